"""Daily rollup cells: what the blocks shown on a day earned, per placement, strategy, variant.

A day's cell counts the blocks shown that day (in the site's ``TIME_ZONE``) and
everything attributed to them, whenever it happened: a click the next morning
on yesterday's block counts for yesterday. So a day's figures settle only once
attribution can no longer reach them (:attr:`Rules.reach` after the day), and
the scheduled rollup rewrites the days that may still change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from personalize.models import DailyRollup, Variant
from personalize.outcomes.attribution import Attribution
from personalize.outcomes.reader import Activity, day_start, micros

#: (day, placement, strategy, experiment pk, variant pk); pks are ``None`` outside experiments.
Cell = tuple[date, str, str, int | None, int | None]


@dataclass
class Counts:
    """One cell's running totals."""

    impressions: int = 0
    subjects: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    conversions: int = 0
    revenue: float = 0.0
    items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a column of strings, and the strings by code."""
    if not len(values):
        return np.zeros(0, dtype=np.int64), []
    uniques, inverse = np.unique(values.astype(str), return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), [str(u) for u in uniques]


def _pairs(cell: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``(cell, value)`` pairs, sorted by cell: one sort of packed keys."""
    if not len(cell):
        return cell, values
    base = np.int64(values.max(initial=0)) + 1
    packed = np.unique(cell.astype(np.int64) * base + values)
    return packed // base, packed % base


class DailyCells:
    """The cells of the days ``first`` to ``last``, added up over groups of subjects.

    Groups never share a subject, so subjects add up exactly; distinct items
    are kept per cell and united across groups.
    """

    def __init__(self, first: date, last: date) -> None:
        self.days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        self.starts = [day_start(day) for day in [*self.days, last + timedelta(days=1)]]
        self.bounds = np.array([micros(moment) for moment in self.starts], dtype=np.int64)
        self.cells: dict[Cell, Counts] = {}
        self.exposures = 0

    @property
    def start(self) -> datetime:
        """The first instant of the first day."""
        return self.starts[0]

    @property
    def end(self) -> datetime:
        """The first instant after the last day."""
        return self.starts[-1]

    def add(self, activity: Activity, attribution: Attribution) -> int:
        """Count the blocks of ``activity`` shown on these days; returns how many."""
        exposures = activity.exposures
        inside = np.flatnonzero((exposures.times >= self.bounds[0])
                                & (exposures.times < self.bounds[-1]))
        if not len(inside):
            return 0
        day = np.searchsorted(self.bounds, exposures.times[inside], side="right") - 1
        placement, placements = _codes(activity.placements[inside])
        strategy, strategies = _codes(activity.strategies[inside])
        keys = np.stack([day, placement, strategy, activity.experiments[inside],
                         activity.variants[inside]], axis=1)
        cells, cell = np.unique(keys, axis=0, return_inverse=True)
        cell = cell.reshape(-1)
        n = len(cells)

        def total(values: np.ndarray) -> np.ndarray:
            return np.bincount(cell, weights=values[inside], minlength=n)

        impressions = np.bincount(cell, minlength=n)
        subjects = np.bincount(_pairs(cell, exposures.subjects[inside])[0], minlength=n)
        clicks, carts = total(attribution.clicks), total(attribution.add_to_carts)
        conversions, revenue = total(attribution.conversions), total(attribution.revenue)
        # the items of every block shown, as (cell, item) pairs, sorted by cell
        cell_of = np.full(len(exposures), -1, dtype=np.int64)
        cell_of[inside] = cell
        item_cell = cell_of[exposures.owners()]
        shown = item_cell >= 0
        item_cells, items = _pairs(item_cell[shown], exposures.items[shown])
        cuts = np.searchsorted(item_cells, np.arange(n + 1))
        for c, (d, p, s, experiment, variant) in enumerate(cells.tolist()):
            key: Cell = (self.days[d], placements[p], strategies[s],
                         None if experiment < 0 else experiment, None if variant < 0 else variant)
            counts = self.cells.setdefault(key, Counts())
            counts.impressions += int(impressions[c])
            counts.subjects += int(subjects[c])
            counts.clicks += round(clicks[c])
            counts.add_to_carts += round(carts[c])
            counts.conversions += round(conversions[c])
            counts.revenue += float(revenue[c])
            counts.items = np.union1d(counts.items, items[cuts[c]:cuts[c + 1]])
        self.exposures += len(inside)
        return len(inside)

    def rows(self, variant_keys: dict[int, str] | None = None) -> list[DailyRollup]:
        """Unsaved :class:`DailyRollup` rows, one per cell.

        Args:
            variant_keys: variant pk -> key; read from the database when omitted.
        """
        if variant_keys is None:
            ids = {key[4] for key in self.cells if key[4] is not None}
            variant_keys = dict(Variant.objects.filter(pk__in=ids).values_list("pk", "key"))
        return [
            DailyRollup(
                day=day, placement=placement, strategy=strategy, experiment_id=experiment,
                variant=variant_keys.get(variant, "") if variant is not None else "",
                impressions=counts.impressions, subjects=counts.subjects, clicks=counts.clicks,
                add_to_carts=counts.add_to_carts, conversions=counts.conversions,
                revenue=round(counts.revenue, 6), items_shown=len(counts.items),
            )
            for (day, placement, strategy, experiment, variant), counts in sorted(
                self.cells.items(), key=lambda pair: (pair[0][0], pair[0][1], pair[0][2],
                                                      pair[0][3] or 0, pair[0][4] or 0))
        ]
