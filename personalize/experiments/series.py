"""The lines of an experiment's charts, from its timeline: plain data in, plot series out.

Pure, like :mod:`.analysis`: the results page (:mod:`.page`) reads the
timeline and the allocation history from the database and hands them here,
then draws what comes back with :func:`.plots.line_chart_svg`. The cumulative
lift is computed day by day with the very comparison the report makes
(:func:`.analysis.compare`), so the chart's last point is the report's figure
for the same subjects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import numpy as np

from personalize.experiments.analysis import compare, variant_result
from personalize.experiments.plots import PALETTE, Series
from personalize.experiments.report import (
    CLICKED,
    CONVERSION,
    CONVERTED,
    CTR,
    REVENUE_SUM,
    SUBJECTS,
    Arm,
    Design,
    Timeline,
)

#: The column of :data:`~.report.FIELDS` that is the numerator of each metric.
NUMERATOR = {CTR: CLICKED, CONVERSION: CONVERTED}


def day_labels(timeline: Timeline) -> list[str]:
    """The x axis: each day's ISO date, or ``day 1``, ``day 2``... without a first day."""
    days = range(len(timeline.counts))
    if timeline.first_day is None:
        return [f"day {n + 1}" for n in days]
    return [(timeline.first_day + timedelta(days=n)).isoformat() for n in days]


def _ordered(timeline: Timeline) -> tuple[list[Arm], np.ndarray]:
    """The arms control first (as the report lists them) and the counts in that order."""
    order = sorted(range(len(timeline.arms)), key=lambda i: not timeline.arms[i].is_control)
    return [timeline.arms[i] for i in order], timeline.counts[:, order]


def cumulative_lift(timeline: Timeline, design: Design) -> list[Series]:
    """Each variant's lift over the control on the primary metric, on the subjects so far.

    One series per non-control variant, named ``"<variant> vs <control>"``: on
    each day, the relative lift computed from the counts up to the end of
    that day, and its interval at the report's level (Bonferroni's
    ``alpha / comparisons`` with more than one variant against the control).
    A day where the lift or its interval is undefined (no subjects yet, a
    control at 0) is ``None``: a gap in the line or its band.
    """
    arms, daily = _ordered(timeline)
    control, others = arms[0], arms[1:]
    level = design.alpha / len(others)
    cumulative = daily.cumsum(axis=0)
    series = []
    for n, arm in enumerate(others, start=1):
        values: list[float | None] = []
        lower: list[float | None] = []
        upper: list[float | None] = []
        for counts in cumulative:
            theirs = variant_result(control, counts[0], int(counts[0, SUBJECTS]), design.alpha)
            mine = variant_result(arm, counts[n], int(counts[n, SUBJECTS]), design.alpha)
            comparison = compare(mine, theirs, design.metric, level)
            interval = comparison.interval
            values.append(comparison.lift)
            lower.append(interval.low if interval is not None else None)
            upper.append(interval.high if interval is not None else None)
        # the variant's own colour, as on the daily chart where the control is first
        series.append(Series(f"{arm.key} vs {control.key}", values, lower, upper,
                             colour=PALETTE[n % len(PALETTE)]))
    return series


def daily_metric(timeline: Timeline, design: Design) -> list[Series]:
    """Each variant's primary metric among that day's new subjects, control first.

    A rate (who clicked, who converted) or the mean revenue per subject; ``None``
    on a day without new subjects in the variant.
    """
    arms, daily = _ordered(timeline)
    column = NUMERATOR.get(design.metric, REVENUE_SUM)
    series = []
    for n, arm in enumerate(arms):
        subjects = daily[:, n, SUBJECTS]
        values = [float(total / count) if count > 0 else None
                  for total, count in zip(daily[:, n, column], subjects, strict=True)]
        series.append(Series(arm.key, values))
    return series


def allocation(keys: Sequence[str],
               snapshots: Sequence[Mapping[str, float]]) -> list[Series]:
    """Each variant's share of traffic in each allocation snapshot, oldest snapshot first.

    Args:
        keys: the variants, in the order their lines are drawn (control first).
        snapshots: the weights of each snapshot (variant key -> share); a
            variant a snapshot does not name had no traffic from it (0), as
            :func:`.results.arms_for` reads it.
    """
    return [Series(key, [float(weights.get(key, 0.0)) for weights in snapshots])
            for key in keys]


__all__ = ["allocation", "cumulative_lift", "daily_metric", "day_labels"]
