"""What each placement and strategy earned over the last days, read from the daily rollups.

The placement performance page and ``manage.py personalize_report`` show it.
Two grouped queries on :class:`~personalize.models.DailyRollup` do the
counting: one for the totals per placement and strategy, one for the same per
day (the sparklines). A block in an experiment is counted in its variant's
row, and each variant's row names the strategy it served, so grouping by
placement and strategy counts every block once. The rates are those of
docs/outcomes.md: click-through and conversion rate per impression, revenue
per subject shown a block. Summed over days, a subject counts once per day it
was shown a block, so the totals say *subject-days*.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Max, Sum
from django.utils import timezone

from personalize.models import DailyRollup, Experiment

#: The windows the admin page offers, in days; the default first.
WINDOWS = (30, 7, 90)
DEFAULT_DAYS = WINDOWS[0]
#: The longest window the command accepts.
MAX_DAYS = 366


@dataclass(frozen=True)
class Totals:
    """The counts of a placement (and strategy) over the window.

    Attributes:
        impressions: blocks shown.
        subject_days: subjects shown a block, summed over days (one per subject and day).
        clicks: clicks on the blocks.
        add_to_carts: add-to-carts credited to them.
        conversions: purchases credited to them.
        revenue: those purchases' value.
        rows: the daily rows counted (a day of one strategy, or of one
            experiment variant).
        items_shown_max: the most distinct items one daily row showed.
        items_shown_mean: the mean of the daily rows' distinct items shown.
    """

    impressions: int = 0
    subject_days: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    conversions: int = 0
    revenue: float = 0.0
    rows: int = 0
    items_shown_max: int = 0
    items_shown_mean: float = 0.0

    @property
    def ctr(self) -> float | None:
        """Clicks per impression (``None`` without impressions)."""
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion_rate(self) -> float | None:
        """Conversions per impression, as the daily rows define it (``None`` without any)."""
        return self.conversions / self.impressions if self.impressions else None

    @property
    def revenue_per_subject_day(self) -> float | None:
        """Revenue per subject shown a block, per day (``None`` without subjects)."""
        return self.revenue / self.subject_days if self.subject_days else None

    @classmethod
    def combined(cls, parts: Iterable[Totals]) -> Totals:
        """The totals of several strategies of one placement."""
        parts = list(parts)
        rows = sum(p.rows for p in parts)
        return cls(
            impressions=sum(p.impressions for p in parts),
            subject_days=sum(p.subject_days for p in parts),
            clicks=sum(p.clicks for p in parts),
            add_to_carts=sum(p.add_to_carts for p in parts),
            conversions=sum(p.conversions for p in parts),
            revenue=sum(p.revenue for p in parts),
            rows=rows,
            items_shown_max=max((p.items_shown_max for p in parts), default=0),
            items_shown_mean=(sum(p.items_shown_mean * p.rows for p in parts) / rows
                              if rows else 0.0),
        )

    def as_dict(self) -> dict[str, Any]:
        """The counts and the rates, as plain data."""
        return {
            "impressions": self.impressions, "subject_days": self.subject_days,
            "clicks": self.clicks, "ctr": self.ctr, "add_to_carts": self.add_to_carts,
            "conversions": self.conversions, "conversion_rate": self.conversion_rate,
            "revenue": self.revenue, "revenue_per_subject_day": self.revenue_per_subject_day,
            "items_shown_max": self.items_shown_max, "items_shown_mean": self.items_shown_mean,
        }


@dataclass(frozen=True)
class Daily:
    """One value per day of the window, oldest first; days without a block count 0."""

    impressions: tuple[int, ...]
    clicks: tuple[int, ...]
    revenue: tuple[float, ...]

    @property
    def ctr(self) -> tuple[float, ...]:
        """Clicks per impression per day (0 on a day without impressions)."""
        return tuple(c / i if i else 0.0 for c, i in zip(self.clicks, self.impressions,
                                                          strict=True))

    @classmethod
    def combined(cls, parts: Sequence[Daily], days: int) -> Daily:
        """The day-by-day sums of several series."""
        return cls(
            impressions=tuple(sum(p.impressions[d] for p in parts) for d in range(days)),
            clicks=tuple(sum(p.clicks[d] for p in parts) for d in range(days)),
            revenue=tuple(sum(p.revenue[d] for p in parts) for d in range(days)),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"impressions": list(self.impressions), "ctr": list(self.ctr),
                "revenue": list(self.revenue)}


@dataclass(frozen=True)
class StrategyPerformance:
    """One strategy of a placement over the window.

    ``strategy`` is ``""`` for blocks served without one (a holdout's empty block).
    """

    strategy: str
    totals: Totals
    daily: Daily

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, **self.totals.as_dict(), "daily": self.daily.as_dict()}


@dataclass(frozen=True)
class ExperimentRef:
    """The experiment running on a placement (for a link to it)."""

    id: int
    name: str


@dataclass(frozen=True)
class PlacementPerformance:
    """One placement over the window: all strategies together, then each strategy."""

    placement: str
    totals: Totals
    daily: Daily
    strategies: tuple[StrategyPerformance, ...]
    experiment: ExperimentRef | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "placement": self.placement, **self.totals.as_dict(), "daily": self.daily.as_dict(),
            "running_experiment": ({"id": self.experiment.id, "name": self.experiment.name}
                                   if self.experiment else None),
            "strategies": [s.as_dict() for s in self.strategies],
        }


@dataclass(frozen=True)
class Performance:
    """Every placement with a block shown in the window ``first_day`` to ``last_day``."""

    first_day: date
    last_day: date
    placements: tuple[PlacementPerformance, ...]

    @property
    def days(self) -> list[date]:
        """The days of the window, oldest first (the daily series' days)."""
        return [self.first_day + timedelta(days=n)
                for n in range((self.last_day - self.first_day).days + 1)]

    def as_dict(self) -> dict[str, Any]:
        """Plain data (dates as ISO strings): ready for JSON."""
        return {"first_day": self.first_day.isoformat(), "last_day": self.last_day.isoformat(),
                "days": [d.isoformat() for d in self.days],
                "placements": [p.as_dict() for p in self.placements]}


def window(days: int = DEFAULT_DAYS, *, today: date | None = None) -> tuple[date, date]:
    """The first and last day of the last ``days`` days, ending today in the current time zone.

    Raises:
        ValueError: ``days`` is below 1 or above :data:`MAX_DAYS`.
    """
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, not {days}.")
    last = today or timezone.localdate()
    return last - timedelta(days=days - 1), last


def placement_performance(days: int = DEFAULT_DAYS, *, today: date | None = None
                          ) -> Performance:
    """Per placement and strategy, what the blocks shown in the last ``days`` days earned.

    Args:
        days: the window's length; it ends today (in the current time zone).
        today: the window's last day, if not today.

    Raises:
        ValueError: ``days`` is out of range (see :func:`window`).
    """
    first, last = window(days, today=today)
    rows = DailyRollup.objects.filter(day__gte=first, day__lte=last).order_by()
    totals: dict[tuple[str, str], Totals] = {}
    for row in rows.values_list("placement", "strategy").annotate(
            Sum("impressions"), Sum("subjects"), Sum("clicks"), Sum("add_to_carts"),
            Sum("conversions"), Sum("revenue"), Count("pk"), Max("items_shown"),
            Sum("items_shown")):
        placement, strategy, impressions, subjects, clicks, carts, conversions, revenue, \
            count, items_max, items_sum = row
        totals[(placement, strategy)] = Totals(
            impressions=impressions or 0, subject_days=subjects or 0, clicks=clicks or 0,
            add_to_carts=carts or 0, conversions=conversions or 0,
            revenue=float(revenue or 0.0), rows=count, items_shown_max=items_max or 0,
            items_shown_mean=(items_sum or 0) / count if count else 0.0)
    length = (last - first).days + 1
    series = {key: ([0] * length, [0] * length, [0.0] * length) for key in totals}
    for placement, strategy, day, impressions, clicks, revenue in (
            rows.values_list("placement", "strategy", "day")
            .annotate(Sum("impressions"), Sum("clicks"), Sum("revenue"))):
        n = (day - first).days
        daily = series[(placement, strategy)]
        daily[0][n], daily[1][n] = impressions or 0, clicks or 0
        daily[2][n] = float(revenue or 0.0)
    running: dict[str, ExperimentRef] = {}
    for placement, pk, name in (
            Experiment.objects.filter(status=Experiment.Status.RUNNING,
                                      placement__in={p for p, _ in totals})
            .order_by("started_at", "pk").values_list("placement", "pk", "name")):
        running.setdefault(placement, ExperimentRef(pk, name))  # the earliest started
    placements = []
    for name in sorted({p for p, _ in totals}):
        strategies = tuple(
            StrategyPerformance(key[1], totals[key], Daily(tuple(series[key][0]),
                                                          tuple(series[key][1]),
                                                          tuple(series[key][2])))
            for key in sorted(k for k in totals if k[0] == name))
        placements.append(PlacementPerformance(
            placement=name,
            totals=Totals.combined(s.totals for s in strategies),
            daily=Daily.combined([s.daily for s in strategies], length),
            strategies=strategies,
            experiment=running.get(name),
        ))
    return Performance(first, last, tuple(placements))


__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "WINDOWS", "Daily", "ExperimentRef", "Performance",
           "PlacementPerformance", "StrategyPerformance", "Totals", "placement_performance",
           "window"]
