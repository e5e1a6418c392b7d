"""The sentences of an experiment's report: the verdict, its warnings and notes."""

from __future__ import annotations

import math

from personalize.experiments.report import METRICS, Report
from personalize.experiments.stats import Comparison


def lift_text(comparison: Comparison) -> str:
    """The lift and its interval in percent: whole percents, one decimal under 10%."""
    if comparison.lift is None:
        return "lift undefined (the control is at 0)"
    digits = 0 if abs(comparison.lift) >= 0.095 else 1
    text = f"{comparison.lift:+.{digits}%}"
    if comparison.interval is not None:
        low, high = comparison.interval.low, comparison.interval.high
        text += f" [{low:.{digits}%}, {high:.{digits}%}]"
    return text


def p_text(p: float | None, adjusted: bool = False) -> str:
    """``p = 0.008`` (two significant digits), ``p < 0.001``, or why there is none."""
    if p is None:
        return "no test possible"
    text = "p < 0.001" if p < 0.001 else f"p = {p:.2g}"
    return text + (" (Holm-adjusted)" if adjusted else "")


def verdict(report: Report, *, exposed: bool, unplannable: str | None = None) -> str:
    """One plain sentence: the decision, or why there is none yet.

    Args:
        report: the report, verdict aside.
        exposed: whether any subject has been exposed.
        unplannable: why no sample size can be planned yet, where none is.
    """
    if not exposed:
        return "no data yet: no subject has been exposed"
    if report.srm is not None and report.srm.mismatch:
        return (f"sample ratio mismatch ({p_text(report.srm.p_value)}): the split of "
                "subjects between the variants does not match their weights, so the "
                "results cannot be trusted until the cause is found")
    if report.horizon_day is not None:
        return _decision(report)
    if report.plan is None:
        return f"not enough data: {unplannable or 'the sample size cannot be planned yet'}"
    if report.plan.reached:
        return ("planned sample reached today: the verdict is given tomorrow, on the "
                "complete day")
    text = f"not enough data: {math.floor(report.plan.progress * 100)}% of the planned sample"
    if report.plan.days_left is not None:
        text += f", about {math.ceil(report.plan.days_left)} more days"
    elif not report.design.running:
        text += "; the experiment stopped before reaching it"
    return text


def _decision(report: Report) -> str:
    metric = METRICS[report.design.metric]
    control = report.variants[0].key
    adjusted = len(report.primary()) > 1
    clauses = []
    for item in report.primary():
        c = item.comparison
        figures = f"{lift_text(c)}, {p_text(item.p_adjusted, adjusted)}"
        if item.significant and c.lift is not None and c.lift > 0:
            clauses.append(f"{item.variant} beats {control} on {metric}, {figures}")
        elif item.significant and c.lift is not None and c.lift < 0:
            clauses.append(f"{item.variant} loses to {control} on {metric}, {figures}")
        else:
            clauses.append(f"no significant difference between {item.variant} and {control} "
                           f"on {metric}: {figures}")
    return "; ".join(clauses)


def warnings(report: Report) -> list[str]:
    """What makes the results untrustworthy."""
    found = []
    if report.srm is not None and report.srm.mismatch:
        observed = " / ".join(str(n) for n in report.srm.observed)
        planned = " / ".join(f"{s:.0%}" for s in report.srm.expected_shares)
        found.append(f"Sample ratio mismatch: {observed} subjects against planned shares "
                     f"{planned} ({p_text(report.srm.p_value)}). Look for an assignment, "
                     "caching or logging fault before reading any result.")
    return found


def notes(report: Report) -> list[str]:
    """How to read the results."""
    found = []
    if report.interim:
        found.append("Interim estimates: no decision before the planned sample is reached "
                     "(a fixed horizon), whatever the p-values say now.")
    else:
        day = report.horizon_date.isoformat() if report.horizon_date else "the horizon day"
        found.append(f"The planned sample was reached on {day}: the results cover the "
                     "subjects first exposed until the end of that day, and later subjects "
                     "do not change them.")
    if len(report.primary()) > 1:
        found.append("More than one variant against the control: p-values are Holm-adjusted "
                     "and intervals Bonferroni-adjusted.")
    if report.design.bandit:
        found.append("Bandit allocation: the traffic moved between variants, so the "
                     "sample-ratio check is skipped and the estimates are descriptive "
                     "(see docs/experiments.md).")
    return found
