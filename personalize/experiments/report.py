"""What the analysis of an experiment reads and writes: its timeline, design and report.

Plain dataclasses, free of Django: the analysis (:mod:`.analysis`) turns a
:class:`Timeline` and a :class:`Design` into a :class:`Report`; the database
side (:mod:`.results`) builds the timeline from the experiment's rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from personalize.experiments.stats import (
    Comparison,
    MeanEstimate,
    RateEstimate,
    SampleRatioCheck,
)

CTR = "ctr"
CONVERSION = "conversion"
REVENUE = "revenue"
#: The metrics every report estimates, in the order they are shown, and their names.
METRICS: dict[str, str] = {
    CTR: "click-through rate",
    CONVERSION: "conversion rate",
    REVENUE: "revenue per subject",
}

#: The columns of :attr:`Timeline.counts`: subjects first exposed, those of them
#: who clicked (at least once), who converted, their revenue and its sum of squares.
FIELDS = ("subjects", "clicked", "converted", "revenue", "revenue_squares")
SUBJECTS, CLICKED, CONVERTED, REVENUE_SUM, REVENUE_SQUARES = range(len(FIELDS))


@dataclass(frozen=True)
class Arm:
    """One variant as the analysis sees it.

    ``weight`` is its planned share of new subjects (any positive scale: the
    weights of an experiment are normalised together).
    """

    key: str
    is_control: bool = False
    weight: float = 1.0


@dataclass(frozen=True, eq=False)
class Timeline:
    """An experiment's counts per day and variant: all the analysis reads.

    Attributes:
        arms: the variants, exactly one of them the control.
        counts: shape ``(days, len(arms), len(FIELDS))``, oldest day first: per
            day, each variant's subjects first exposed that day and their
            outcomes so far (the columns of :data:`FIELDS`).
        first_day: the date of the first day (to name the horizon's), if known.
        last_day_partial: whether the last day is today and not over: it then
            neither ends the horizon nor counts in the projection's daily rate.

    Raises:
        ValueError: fewer than two variants, not exactly one control,
            duplicate keys, or counts of another shape.
    """

    arms: tuple[Arm, ...]
    counts: np.ndarray
    first_day: date | None = None
    last_day_partial: bool = False

    def __post_init__(self) -> None:
        arms = tuple(self.arms)
        if len(arms) < 2:
            raise ValueError("An experiment needs at least two variants.")
        if sum(a.is_control for a in arms) != 1:
            raise ValueError("An experiment needs exactly one control variant.")
        if len({a.key for a in arms}) != len(arms):
            raise ValueError("Variant keys must be unique.")
        counts = np.asarray(self.counts, dtype=np.float64)
        if counts.size == 0:
            counts = counts.reshape(0, len(arms), len(FIELDS))
        if counts.ndim != 3 or counts.shape[1:] != (len(arms), len(FIELDS)):
            raise ValueError(f"Counts need the shape (days, {len(arms)}, {len(FIELDS)}), "
                             f"got {counts.shape}.")
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "counts", counts)

    @classmethod
    def from_totals(cls, arms: Sequence[Arm], totals: Sequence[Sequence[float]],
                    **kwargs: Any) -> Timeline:
        """A timeline of one day, from each variant's totals (a row of :data:`FIELDS` each)."""
        return cls(tuple(arms), np.asarray(totals, dtype=np.float64)[np.newaxis], **kwargs)

    @property
    def complete_days(self) -> int:
        """How many days, from the first, are over."""
        return len(self.counts) - int(self.last_day_partial and len(self.counts) > 0)


@dataclass(frozen=True)
class Design:
    """What the experiment promised to test.

    Attributes:
        metric: the primary metric, one of :data:`METRICS` (the verdict's).
        mde: the minimum detectable effect, a relative lift (0.1 for +10%).
        alpha: the significance level (two-sided).
        power: the probability of detecting a lift of ``mde``.
        bandit: whether the traffic is allocated by Thompson sampling.
        running: whether subjects still arrive (a stopped experiment gets no projection).
    """

    metric: str = CTR
    mde: float = 0.1
    alpha: float = 0.05
    power: float = 0.8
    bandit: bool = False
    running: bool = True

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"Unknown metric {self.metric!r}; choose one of {list(METRICS)}.")


@dataclass(frozen=True)
class VariantResult:
    """One variant's estimates, each with its ``1 - alpha`` interval.

    ``subjects`` are those the estimates cover (up to the horizon once it is
    reached), ``exposed`` every subject exposed so far.
    """

    key: str
    is_control: bool
    subjects: int
    exposed: int
    ctr: RateEstimate
    conversion: RateEstimate
    revenue: MeanEstimate

    def value(self, metric: str) -> float | None:
        """The point estimate of ``metric``."""
        estimate = getattr(self, metric)
        return estimate.mean if metric == REVENUE else estimate.rate


@dataclass(frozen=True)
class VariantComparison:
    """A variant against the control on one metric, with the multiplicity adjustment.

    ``p_adjusted`` is Holm's (equal to ``p_value`` with a single comparison);
    ``significant`` is ``p_adjusted < alpha``. With more than one comparison,
    the lift's interval is Bonferroni's (level ``1 - alpha / comparisons``).
    """

    variant: str
    metric: str
    comparison: Comparison
    p_adjusted: float | None
    significant: bool


@dataclass(frozen=True)
class Plan:
    """The fixed horizon: the subjects each variant needs, and how far the experiment is.

    Attributes:
        planned: variant key -> subjects needed.
        progress: the least advanced variant's share of its planned sample (<= 1).
        reached: whether every variant has its planned sample.
        days_left: the projected days until it has, from the recent rate of new
            subjects; ``None`` when reached, stopped, or without a rate yet.
    """

    planned: dict[str, int]
    progress: float
    reached: bool
    days_left: float | None


@dataclass(frozen=True)
class Report:
    """An experiment's results.

    Attributes:
        design: what was tested.
        variants: per variant estimates, control first.
        comparisons: metric -> each other variant against the control.
        srm: the sample-ratio check (``None``: not checkable yet, or a bandit).
        plan: the fixed horizon (``None`` while it cannot be planned).
        interim: whether the estimates are interim (no horizon yet).
        horizon_day: the index of the first day at whose end every variant had
            its planned sample; the estimates cover the subjects up to its end.
        horizon_date: that day's date, where the timeline has dates.
        verdict: one plain sentence.
        warnings: what makes the results untrustworthy (a sample-ratio mismatch).
        notes: how to read them.
    """

    design: Design
    variants: list[VariantResult]
    comparisons: dict[str, list[VariantComparison]]
    srm: SampleRatioCheck | None
    plan: Plan | None
    interim: bool
    horizon_day: int | None
    horizon_date: date | None
    verdict: str = ""
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (dates as ISO strings): ready for JSON."""
        data = dataclasses.asdict(self)
        data["horizon_date"] = self.horizon_date.isoformat() if self.horizon_date else None
        return data

    def primary(self) -> list[VariantComparison]:
        """The comparisons on the primary metric (the verdict's)."""
        return self.comparisons[self.design.metric]
