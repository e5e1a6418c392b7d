"""What the admin's results page of an experiment shows, as template-ready data.

The report (:func:`.results.experiment_report`), its sentences (:mod:`.wording`)
and its charts (:mod:`.series` drawn by :func:`.plots.line_chart_svg`) are
put together here, so that the admin view only renders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from personalize.experiments import series, wording
from personalize.experiments.analysis import analyse
from personalize.experiments.plots import line_chart_svg
from personalize.experiments.report import (
    METRICS,
    REVENUE,
    SUBJECTS,
    Report,
    Timeline,
    VariantComparison,
)
from personalize.experiments.results import (
    allocation_history,
    design_for,
    experiment_timeline,
)
from personalize.experiments.stats import MeanEstimate, RateEstimate
from personalize.models import Experiment


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its heading, the SVG, and a sentence on how to read it."""

    title: str
    svg: SafeString
    caption: str


@dataclass
class ResultsPage:
    """An experiment's results page.

    Attributes:
        message: shown instead of the results when there are none to show (a
            draft, no subject exposed yet); every other field is then empty.
        tone: the verdict's colour: ``win``, ``loss``, ``neutral``, ``pending`` or ``warning``.
        plan: the fixed horizon, ``None`` while it cannot be planned.
        variants: one row per variant, control first, each estimate in words.
        comparisons: per metric (the primary first), each variant against the control.
        adjusted: whether the p-values are Holm-adjusted (more than one comparison).
    """

    message: str = ""
    report: Report | None = None
    tone: str = "pending"
    plan: dict[str, Any] | None = None
    variants: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    adjusted: bool = False
    charts: list[Chart] = field(default_factory=list)


def results_page(experiment: Experiment, *, today: date | None = None) -> ResultsPage:
    """Everything the results page of ``experiment`` shows."""
    if experiment.status == Experiment.Status.DRAFT:
        return ResultsPage(message="This experiment is a draft: it has no results until it "
                                   "is started (the Start action on the experiment list).")
    try:
        timeline = experiment_timeline(experiment, today=today)
    except ValueError as exc:  # variants deleted by hand: nothing can be compared
        return ResultsPage(message=f"This experiment cannot be analysed: {exc}")
    if not timeline.counts[..., SUBJECTS].any():
        return ResultsPage(message="No subject has been exposed to this experiment yet: the "
                                   "results appear once its placement is shown and the "
                                   "rollup has run (personalize_rollup).")
    design = design_for(experiment)
    report = analyse(design, timeline)  # experiment_report, without reading the timeline twice
    primary = report.primary()
    return ResultsPage(
        report=report, tone=tone(report), plan=_plan(report),
        variants=[{
            "key": v.key, "is_control": v.is_control, "subjects": v.subjects,
            "exposed": v.exposed, "ctr": rate_text(v.ctr), "conversion": rate_text(v.conversion),
            "revenue": mean_text(v.revenue),
        } for v in report.variants],
        comparisons=[{
            "metric": METRICS[metric], "primary": metric == design.metric,
            "rows": [_comparison_row(item) for item in report.comparisons[metric]],
        } for metric in sorted(METRICS, key=lambda m: m != design.metric)],
        adjusted=len(primary) > 1,
        charts=_charts(experiment, report, timeline),
    )


def tone(report: Report) -> str:
    """How the verdict reads: a mismatch, a win, a loss, no difference, or still waiting."""
    if report.srm is not None and report.srm.mismatch:
        return "warning"
    if report.horizon_day is None:
        return "pending"
    lifts = [c.comparison.lift for c in report.primary() if c.significant]
    if any(lift is not None and lift > 0 for lift in lifts):
        return "win"
    if any(lift is not None and lift < 0 for lift in lifts):
        return "loss"
    return "neutral"


def rate_text(estimate: RateEstimate) -> str:
    """``12.3% [9.8%, 15.1%]``, or a dash without subjects."""
    if estimate.rate is None:
        return "-"
    text = f"{estimate.rate:.1%}"
    if estimate.interval is not None:
        text += f" [{estimate.interval.low:.1%}, {estimate.interval.high:.1%}]"
    return text


def mean_text(estimate: MeanEstimate) -> str:
    """``1.23 [0.80, 1.66]`` (two decimals, in the shop's currency), or a dash."""
    if estimate.mean is None:
        return "-"
    text = f"{estimate.mean:.2f}"
    if estimate.interval is not None:
        text += f" [{estimate.interval.low:.2f}, {estimate.interval.high:.2f}]"
    return text


def _comparison_row(item: VariantComparison) -> dict[str, Any]:
    return {
        "variant": item.variant, "lift": wording.lift_text(item.comparison),
        "p": wording.p_text(item.comparison.p_value),
        "p_adjusted": wording.p_text(item.p_adjusted), "significant": item.significant,
    }


def _plan(report: Report) -> dict[str, Any] | None:
    plan = report.plan
    if plan is None:
        return None
    exposed = {v.key: v.exposed for v in report.variants}
    return {
        "rows": [{"key": key, "planned": need, "subjects": exposed[key],
                  "progress": f"{min(exposed[key] / need, 1.0) if need else 1.0:.0%}"}
                 for key, need in plan.planned.items()],
        "progress": f"{math.floor(plan.progress * 100)}%",
        "days_left": math.ceil(plan.days_left) if plan.days_left is not None else None,
        "reached": plan.reached,
    }


def _charts(experiment: Experiment, report: Report, timeline: Timeline) -> list[Chart]:
    design = report.design
    days = series.day_labels(timeline)
    metric = METRICS[design.metric]
    money = design.metric == REVENUE
    charts = []
    lift = line_chart_svg(days, series.cumulative_lift(timeline, design),
                          title=f"Cumulative lift on {metric}", zero_line=True,
                          value_format=lambda v: f"{v:+.1%}")
    if lift:
        charts.append(Chart(f"Cumulative lift on {metric}", _svg(lift),
                            "Each variant against the control on the subjects up to each day, "
                            "with its confidence interval (the band). Early days swing widely: "
                            "read the verdict, not the line."))
    daily = line_chart_svg(days, series.daily_metric(timeline, design),
                           title=f"Daily {metric}",
                           value_format=(lambda v: f"{v:.2f}") if money else (lambda v: f"{v:.1%}"))
    if daily:
        charts.append(Chart(f"Daily {metric} per variant", _svg(daily),
                            "Among each day's newly exposed subjects; a gap is a day without "
                            "any."))
    if design.bandit:
        history = allocation_history(experiment)
        keys = [v.key for v in report.variants]
        labels = [timezone.localtime(at).strftime("%Y-%m-%d %H:%M") for at, _ in history]
        shares = line_chart_svg(labels, series.allocation(keys, [w for _, w in history]),
                                title="Traffic allocation", value_format=lambda v: f"{v:.0%}")
        charts.append(Chart("Traffic allocation (Thompson sampling)", _svg(shares),
                            "Each variant's share of new subjects from each update of the "
                            "bandit on." if shares else
                            "No allocation update yet: the variants share the traffic equally "
                            "until the first rollup."))
    return charts


def _svg(markup: str) -> SafeString:
    return mark_safe(markup)  # noqa: S308 - line_chart_svg escapes every name it writes


__all__ = ["Chart", "ResultsPage", "mean_text", "rate_text", "results_page", "tone"]
