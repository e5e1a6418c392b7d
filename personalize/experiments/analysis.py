"""An experiment's report from its timeline: estimates, comparisons, plan, verdict.

Pure: a :class:`~.report.Timeline` in, a :class:`~.report.Report` out, nothing
read from the database (:mod:`.results` builds the timeline; the benchmark
drives this module directly). The report enforces a fixed horizon: it plans
the sample the primary metric needs, gives a verdict only once every variant
has reached it, and from then on analyses the subjects first exposed until
the end of the day it was reached, so that looking again later does not
change the decision. docs/experiments.md describes the method and its limits.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import timedelta

import numpy as np

from personalize.experiments import wording
from personalize.experiments.report import (
    CLICKED,
    CONVERTED,
    CTR,
    METRICS,
    REVENUE,
    REVENUE_SQUARES,
    REVENUE_SUM,
    SUBJECTS,
    Arm,
    Design,
    Plan,
    Report,
    Timeline,
    VariantComparison,
    VariantResult,
)
from personalize.experiments.stats import (
    Comparison,
    RateEstimate,
    compare_means,
    compare_rates,
    holm,
    mean_estimate,
    rate_estimate,
    sample_ratio_check,
    sample_size_for_mean,
    sample_size_for_rate,
)

#: The projection reads the rate of new subjects over this many most recent full days.
PROJECTION_DAYS = 7


def analyse(design: Design, timeline: Timeline) -> Report:
    """The report of an experiment from its timeline.

    The horizon is the first complete day at whose end every variant had the
    sample planned from the counts up to then. Once there is one, the report
    analyses the subjects first exposed until its end, whatever came later.
    Before it, the estimates are interim and the verdict says how far the
    experiment is.

    Args:
        design: the experiment's primary metric, effect size, alpha, power, allocation.
        timeline: each variant's counts per day.
    """
    order = sorted(range(len(timeline.arms)), key=lambda i: not timeline.arms[i].is_control)
    arms = [timeline.arms[i] for i in order]
    daily = timeline.counts[:, order]
    cumulative = daily.cumsum(axis=0)
    totals = cumulative[-1] if len(cumulative) else np.zeros(daily.shape[1:])
    srm = None if design.bandit else sample_ratio_check(
        [int(n) for n in totals[:, SUBJECTS]], [a.weight for a in arms])
    horizon = _horizon(design, arms, cumulative[: timeline.complete_days])
    plan: Plan | None
    if horizon is not None:
        day, planned = horizon
        analysed = cumulative[day]
        plan = Plan(planned, 1.0, True, None)
    else:
        day, analysed = None, totals
        new = daily[: timeline.complete_days, :, SUBJECTS].sum(axis=1)
        plan = _plan(design, arms, totals, new)
    results = [variant_result(arm, row, int(total[SUBJECTS]), design.alpha)
               for arm, row, total in zip(arms, analysed, totals, strict=True)]
    report = Report(
        design=design, variants=results,
        comparisons={metric: _compare(results, metric, design.alpha) for metric in METRICS},
        srm=srm, plan=plan, interim=horizon is None, horizon_day=day,
        horizon_date=(timeline.first_day + timedelta(days=day)
                      if day is not None and timeline.first_day is not None else None),
    )
    reason = _unplannable(design, arms, totals) if plan is None else None
    return dataclasses.replace(
        report, verdict=wording.verdict(report, exposed=bool(totals[:, SUBJECTS].any()),
                                        unplannable=reason),
        warnings=wording.warnings(report), notes=wording.notes(report),
    )


def _horizon(design: Design, arms: list[Arm],
             cumulative: np.ndarray) -> tuple[int, dict[str, int]] | None:
    """The first day whose counts reach the sample they plan, and that plan."""
    for day, counts in enumerate(cumulative):
        planned = _planned(design, arms, counts)
        if planned is not None and all(
                n >= planned[a.key] for a, n in zip(arms, counts[:, SUBJECTS], strict=True)):
            return day, planned
    return None


def _planned(design: Design, arms: list[Arm], counts: np.ndarray) -> dict[str, int] | None:
    """The subjects each variant needs for the primary metric, planned from ``counts``.

    Each variant is compared with the control at Bonferroni's level (Holm's
    decisions are at least as powerful, so the plan holds for them too). A
    variant with ``ratio`` times the control's share needs ``ratio`` times its
    subjects; the control needs the most any comparison asks of it.
    """
    control, others = counts[0], arms[1:]
    if control[SUBJECTS] < 2:
        return None
    shares = _shares(design, arms, counts)
    alpha = design.alpha / len(others)
    needs: dict[str, int] = {}
    control_needs = 0
    for arm in others:
        ratio = 1.0 if design.bandit else shares[arm.key] / shares[arms[0].key]
        if not ratio > 0 or not math.isfinite(ratio):
            return None
        n = _control_sample(design, control, alpha, ratio)
        if n is None:
            return None
        control_needs = max(control_needs, n)
        needs[arm.key] = math.ceil(n * ratio)
    return {arms[0].key: control_needs, **needs}


def _control_sample(design: Design, control: np.ndarray, alpha: float,
                    ratio: float) -> int | None:
    """The subjects the control needs against one variant (``ratio`` variant subjects each)."""
    n = int(control[SUBJECTS])
    if design.metric == REVENUE:
        estimate = mean_estimate(control[REVENUE_SUM], control[REVENUE_SQUARES], n)
        if estimate.mean is None or estimate.sd is None:
            return None
        return sample_size_for_mean(estimate.mean, estimate.sd, design.mde, alpha=alpha,
                                    power=design.power, ratio=ratio)
    successes = control[CLICKED if design.metric == CTR else CONVERTED]
    return sample_size_for_rate(successes / n, design.mde, alpha=alpha, power=design.power,
                                ratio=ratio)


def _plan(design: Design, arms: list[Arm], totals: np.ndarray,
          new_per_day: np.ndarray) -> Plan | None:
    """The plan from all the counts so far, how far along it is, and how long it will take."""
    planned = _planned(design, arms, totals)
    if planned is None:
        return None
    subjects = dict(zip((a.key for a in arms), totals[:, SUBJECTS].tolist(), strict=True))
    progress = min(min(subjects[key] / need, 1.0) for key, need in planned.items())
    reached = all(subjects[key] >= need for key, need in planned.items())
    days_left = None
    recent = new_per_day[-PROJECTION_DAYS:]
    if not reached and design.running and recent.sum() > 0:
        per_day = recent.mean()
        shares = _shares(design, arms, totals)
        missing = {key: need - subjects[key] for key, need in planned.items()
                   if need > subjects[key]}
        if all(shares[key] > 0 for key in missing):
            days_left = max(left / (per_day * shares[key]) for key, left in missing.items())
    return Plan(planned, progress, reached, days_left)


def _shares(design: Design, arms: list[Arm], counts: np.ndarray) -> dict[str, float]:
    """Each variant's expected share of new subjects.

    The planned weights under a fixed allocation; under a bandit, whose
    weights move, the shares observed so far (the planned ones before anyone).
    """
    subjects = counts[:, SUBJECTS]
    if design.bandit and subjects.sum() > 0:
        values = subjects / subjects.sum()
    else:
        weights = np.array([max(a.weight, 0.0) for a in arms])
        values = weights / weights.sum() if weights.sum() > 0 else np.zeros(len(arms))
    return dict(zip((a.key for a in arms), values.tolist(), strict=True))


def _unplannable(design: Design, arms: list[Arm], totals: np.ndarray) -> str:
    """Why no sample size can be planned from the counts so far, in words."""
    control = totals[0]
    if not design.bandit and not all(_shares(design, arms, totals).values()):
        return "a variant with a traffic weight of 0 never reaches a planned sample"
    if control[SUBJECTS] < 2:
        return "the control needs subjects before the sample size can be planned"
    if design.metric == REVENUE:
        if control[REVENUE_SUM] <= 0:
            return "the control has no revenue yet, so the sample size cannot be planned"
        return "the control's revenue does not vary yet, so the sample size cannot be planned"
    successes = control[CLICKED if design.metric == CTR else CONVERTED]
    if successes == 0:
        what = "clicks" if design.metric == CTR else "conversions"
        return f"the control has no {what} yet, so the sample size cannot be planned"
    rate = successes / control[SUBJECTS]
    return (f"a lift of {design.mde:.0%} over the control's {METRICS[design.metric]} of "
            f"{rate:.1%} would pass 100%: lower the minimum detectable effect")


def variant_result(arm: Arm, row: np.ndarray, exposed: int, alpha: float) -> VariantResult:
    """One variant's estimates from its row of counts (the columns of :data:`~.report.FIELDS`).

    ``exposed`` is every subject exposed so far (the row may stop at the horizon).
    """
    n = int(row[SUBJECTS])
    return VariantResult(
        key=arm.key, is_control=arm.is_control, subjects=n, exposed=exposed,
        ctr=rate_estimate(int(row[CLICKED]), n, alpha=alpha),
        conversion=rate_estimate(int(row[CONVERTED]), n, alpha=alpha),
        revenue=mean_estimate(float(row[REVENUE_SUM]), float(row[REVENUE_SQUARES]), n,
                              alpha=alpha),
    )


def _compare(results: Sequence[VariantResult], metric: str,
             alpha: float) -> list[VariantComparison]:
    control, others = results[0], results[1:]
    # intervals at the Bonferroni level: they hold together for the whole family
    level = alpha / len(others)
    raw = [compare(variant, control, metric, level) for variant in others]
    adjusted = holm([c.p_value for c in raw], alpha=alpha)
    return [
        VariantComparison(variant.key, metric, comparison, p,
                          significant=p is not None and p < alpha)
        for variant, comparison, p in zip(others, raw, adjusted, strict=True)
    ]


def compare(variant: VariantResult, control: VariantResult, metric: str,
            alpha: float) -> Comparison:
    """``variant`` against ``control`` on ``metric``, the lift's interval at level ``1 - alpha``.

    Rates by the two-proportion test, revenue per subject by Welch's: the one
    comparison the report and its charts (:mod:`.series`) both make.
    """
    if metric == REVENUE:
        return compare_means(variant.revenue, control.revenue, alpha=alpha)
    mine: RateEstimate = getattr(variant, metric)
    theirs: RateEstimate = getattr(control, metric)
    return compare_rates(mine.successes, mine.n, theirs.successes, theirs.n, alpha=alpha)
