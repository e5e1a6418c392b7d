"""The text tables of ``manage.py personalize_report``, written from the data its JSON prints.

:func:`performance_text` writes :meth:`Performance.as_dict` and the
experiments' summaries; :func:`experiment_text` writes
:func:`~personalize.experiments.results.experiment_payload`. So the table and
``--format json`` can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from personalize.experiments.report import METRICS


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Fixed-width lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]
        return "  ".join(cells).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]


def percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


PERFORMANCE_HEADER = ("placement / strategy", "impressions", "subject-days", "clicks", "CTR",
                      "add-to-carts", "conversions", "conv. rate", "revenue",
                      "rev./subject-day", "items max/mean")


def _performance_row(label: str, figures: dict[str, Any]) -> list[str]:
    return [label, f"{figures['impressions']:,}", f"{figures['subject_days']:,}",
            f"{figures['clicks']:,}", percent(figures["ctr"]), f"{figures['add_to_carts']:,}",
            f"{figures['conversions']:,}", percent(figures["conversion_rate"]),
            money(figures["revenue"]), money(figures["revenue_per_subject_day"]),
            f"{figures['items_shown_max']} / {figures['items_shown_mean']:.1f}"]


def performance_text(performance: dict[str, Any], experiments: Sequence[dict[str, Any]]) -> str:
    """The placement table of the window, then one line per experiment."""
    lines = [f"Placement performance, {performance['first_day']} to {performance['last_day']} "
             f"({len(performance['days'])} days)", ""]
    if performance["placements"]:
        rows = []
        for placement in performance["placements"]:
            rows.append(_performance_row(placement["placement"], placement))
            rows += [_performance_row(f"  {s['strategy'] or '(no strategy)'}", s)
                     for s in placement["strategies"]]
        lines += table(PERFORMANCE_HEADER, rows)
        lines += ["", "CTR and conversion rate are per impression; a subject-day is a subject "
                      "shown a block on a day."]
    else:
        lines.append("No recommendation block was shown in these days. Blocks shown to "
                     "visitors who allow analytics are counted by the personalize-rollup beat "
                     "task, or now by `manage.py personalize_rollup`.")
    lines += ["", "Experiments"]
    if not experiments:
        lines.append("  none yet: create one in the admin (Personalization > Experiments).")
    for experiment in experiments:
        lines.append(f"  {experiment['id']}  {experiment['name']} ({experiment['placement']}, "
                     f"{experiment['status']}): {experiment['verdict']}")
    return "\n".join(lines) + "\n"


def _lift(comparison: dict[str, Any] | None) -> str:
    if comparison is None:
        return "(control)"
    lift, interval = comparison["comparison"]["lift"], comparison["comparison"]["interval"]
    if lift is None:
        return "-"
    text = f"{lift:+.1%}"
    if interval is not None:
        text += f" [{interval['low']:.1%}, {interval['high']:.1%}]"
    return text


def _p(comparison: dict[str, Any] | None) -> str:
    if comparison is None or comparison["p_adjusted"] is None:
        return "-"
    p = comparison["p_adjusted"]
    return ("< 0.001" if p < 0.001 else f"{p:.2g}") + (" *" if comparison["significant"] else "")


def experiment_text(payload: dict[str, Any]) -> str:
    """The verdict, warnings, plan, notes and per-variant table of one experiment."""
    experiment, report = payload["experiment"], payload["report"]
    metric = experiment["primary_metric"]
    since = experiment["started_at"][:10] if experiment["started_at"] else "not started"
    lines = [
        f"{experiment['name']} (id {experiment['id']}) on {experiment['placement']}: "
        f"{experiment['status']}, started {since}"
        + (f", ended {experiment['ended_at'][:10]}" if experiment["ended_at"] else ""),
        f"Primary metric: {METRICS[metric]}; minimum detectable effect "
        f"{experiment['minimum_detectable_effect']:+.0%}; alpha {experiment['alpha']}; "
        f"power {experiment['power']}; allocation {experiment['allocation']}",
        "",
        f"Verdict: {report['verdict']}",
    ]
    lines += [f"Warning: {warning}" for warning in report["warnings"]]
    plan = report["plan"]
    if plan is not None:
        planned = ", ".join(f"{key} {n:,}" for key, n in plan["planned"].items())
        text = f"Plan: {planned} subjects; {math.floor(plan['progress'] * 100)}% reached"
        if plan["days_left"] is not None:
            text += f", about {math.ceil(plan['days_left'])} more days"
        lines.append(text)
    else:
        lines.append("Plan: not yet possible (too few subjects to estimate the control's rate)")
    lines += [f"Note: {note}" for note in report["notes"]]
    comparisons = {c["variant"]: c for c in report["comparisons"][metric]}
    rows = [
        [f"{v['key']}{' (control)' if v['is_control'] else ''}", f"{v['subjects']:,}",
         f"{v['exposed']:,}", percent(v["ctr"]["rate"]), percent(v["conversion"]["rate"]),
         money(v["revenue"]["mean"]), _lift(comparisons.get(v["key"])),
         _p(comparisons.get(v["key"]))]
        for v in report["variants"]
    ]
    lines += ["", *table(("variant", "subjects", "exposed", "CTR", "conv. rate", "revenue/subject",
                          f"lift on {METRICS[metric]}", "p"), rows)]
    lines += ["", "Rates are per subject (who clicked, who converted); * significant at "
                  f"alpha {experiment['alpha']}."]
    return "\n".join(lines) + "\n"
