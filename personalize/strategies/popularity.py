"""Popularity and trending: the fallback every site needs, and a sanity baseline.

Both work for an empty history (a first-time visitor) and never return an item
the subject already has. With ``per_category=True`` a subject with a history
sees popular items of the categories they engage with first ("popular in what
you like"), then the rest by global popularity. :meth:`PopularityBase.popular_in_category`
answers "popular in <category>" blocks.

Artifact layout (``artifact_version`` 1):

``item_ids``
    the dataset item ids, sorted.
``scores``
    float32 popularity (or decayed trend) per item.
``categories.*``
    ``(n_items, n_categories)`` CSR of 1.0 where an item is in a category
    (only when the dataset has categories).
``category_names``
    the category name of each column of ``categories``.
``category_max``
    float32, the highest score within each category.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personalize.dataset import SECONDS_PER_DAY, Dataset
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import Options, Scored
from personalize.strategies.common import VectorStrategy, parse_exclude, positions, ranked
from personalize.strategies.history import History

COUNT_MODES = ("subjects", "events", "weight")


@dataclass(frozen=True)
class PopularityOptions(Options):
    """Options of :class:`Popularity`.

    Attributes:
        count: what makes an item popular: ``"subjects"`` (distinct subjects
            with a positive interaction), ``"events"`` (number of events) or
            ``"weight"`` (sum of positive event weights).
        window_days: only count events this many days before the snapshot's
            latest event (``None``: all).
        per_category: rank the categories a subject engages with first.
    """

    count: str = "subjects"
    window_days: float | None = None
    per_category: bool = False

    def validate(self) -> None:
        if self.count not in COUNT_MODES:
            raise ValueError(f"count must be one of {', '.join(COUNT_MODES)}, got {self.count!r}")
        if self.window_days is not None and not self.window_days > 0:
            raise ValueError(f"window_days must be positive or None, got {self.window_days!r}")


@dataclass(frozen=True)
class TrendingOptions(Options):
    """Options of :class:`Trending`.

    Attributes:
        half_life_days: an event's weight halves every this many days of age
            (age measured from the snapshot's latest event).
        window_days: ignore events older than this (``None``: all).
        per_category: rank the categories a subject engages with first.
    """

    half_life_days: float = 7.0
    window_days: float | None = 90.0
    per_category: bool = False

    def validate(self) -> None:
        if not self.half_life_days > 0:
            raise ValueError(f"half_life_days must be positive, got {self.half_life_days!r}")
        if self.window_days is not None and not self.window_days > 0:
            raise ValueError(f"window_days must be positive or None, got {self.window_days!r}")


class PopularityBase(VectorStrategy):
    """What Popularity and Trending share: category handling and serving."""

    artifact_version: ClassVar[int] = 1
    options: PopularityOptions | TrendingOptions

    def _item_weights(self, dataset: Dataset) -> np.ndarray:
        raise NotImplementedError

    def fit(self, dataset: Dataset) -> Artifact:
        """Score every item of the snapshot; keep the category matrix when there is one."""
        scores = self._item_weights(dataset).astype(np.float32)
        artifact = self.new_artifact(
            {"item_ids": np.asarray(dataset.item_ids), "scores": scores},
            n_items=dataset.n_items,
        )
        categories = [list(c) for c in dataset.item_categories]
        if any(categories):
            names = sorted({name for item in categories for name in item})
            column = {name: n for n, name in enumerate(names)}
            rows = np.repeat(np.arange(len(categories)), [len(c) for c in categories])
            cols = np.fromiter((column[name] for item in categories for name in item),
                               dtype=np.int64, count=len(rows))
            matrix = sp.csr_array(
                (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(categories), len(names))
            )
            matrix.data[:] = 1.0  # an item listing a category twice is in it once
            artifact.put_csr("categories", matrix)
            artifact.arrays["category_names"] = np.asarray(names, dtype=str)
            artifact.arrays["category_max"] = _category_max(matrix, scores)
        return artifact

    def item_scores(self, artifact: Artifact, history: History) -> np.ndarray:
        scores = artifact["scores"].astype(np.float64)
        if not self.options.per_category or not len(history) or "category_names" not in artifact:
            return scores
        columns, _ = positions(artifact, history.item_ids)
        if columns.size == 0:
            return scores
        membership = artifact.get_csr("categories")
        profile = np.asarray(membership[columns].sum(axis=0)).ravel() / columns.size
        scale = np.where(artifact["category_max"] > 0, artifact["category_max"], 1.0)
        affinity = membership @ (profile / scale)
        top = float(scores.max()) if scores.size else 0.0
        # categories first; global popularity orders the rest and breaks ties
        return affinity * scores + 1e-6 * scores / (top if top > 0 else 1.0)

    def popular_in_category(
        self, artifact: Artifact, category: str, k: int, exclude: Iterable[Any] = ()
    ) -> Scored:
        """The ``k`` most popular items of ``category`` (for "popular in X" blocks).

        Returns:
            ``[(item_id, score)]``; empty when the category is unknown.
        """
        self.check_artifact(artifact)
        if k <= 0 or "category_names" not in artifact:
            return []
        names = artifact["category_names"]
        where = int(np.searchsorted(names, category))
        if where >= len(names) or names[where] != category:
            return []
        membership = artifact.get_csr("categories")
        scores = np.where(membership[:, [where]].toarray().ravel() > 0,
                          artifact["scores"].astype(np.float64), -np.inf)
        excluded, _ = positions(artifact, parse_exclude(exclude))
        scores[excluded] = -np.inf
        return ranked(artifact, scores, k)


def _category_max(matrix: sp.csr_array, scores: np.ndarray) -> np.ndarray:
    """The highest item score in each category (vectorised over the CSR columns)."""
    csc = matrix.tocsc()
    best = np.zeros(matrix.shape[1], dtype=np.float32)
    counts = np.diff(csc.indptr)
    nonempty = counts > 0
    if csc.indices.size:
        best[nonempty] = np.maximum.reduceat(scores[csc.indices], csc.indptr[:-1][nonempty])
    return best


def _window(dataset: Dataset, window_days: float | None) -> np.ndarray:
    """Bool mask of the events inside the window (all when no window or no timestamps)."""
    events = dataset.events
    keep = np.ones(len(events), dtype=bool)
    known = events.timestamp > 0
    if window_days is not None and known.any():
        latest = events.timestamp[known].max()
        keep = ~known | (events.timestamp >= latest - window_days * SECONDS_PER_DAY)
    return keep


class Popularity(PopularityBase):
    """The most popular items, the same for everyone (or per category)."""

    name = "popular"
    options_class = PopularityOptions
    generic_reason: ClassVar[str] = "popular"
    needs = frozenset({"interactions"})
    options: PopularityOptions

    def _item_weights(self, dataset: Dataset) -> np.ndarray:
        n_items = dataset.n_items
        events = dataset.events
        whole = self.options.window_days is None and self.options.count != "events"
        if len(events) == 0 or whole:
            matrix = sp.csr_array(dataset.interactions)
            positive = matrix.data > 0
            if self.options.count == "weight":
                return np.bincount(matrix.indices[positive], weights=matrix.data[positive],
                                   minlength=n_items)
            return np.bincount(matrix.indices[positive], minlength=n_items).astype(np.float64)
        chosen = np.flatnonzero(_window(dataset, self.options.window_days))
        if self.options.count == "events":
            return np.bincount(events.item_idx[chosen], minlength=n_items).astype(np.float64)
        weight = events.weight[chosen].astype(np.float64)
        positive = chosen[weight > 0]
        if self.options.count == "weight":
            return np.bincount(events.item_idx[positive], weights=weight[weight > 0],
                               minlength=n_items)
        pairs = np.unique(events.subject_idx[positive].astype(np.int64) * n_items
                          + events.item_idx[positive])
        return np.bincount(pairs % max(n_items, 1), minlength=n_items).astype(np.float64)


class Trending(PopularityBase):
    """Items gaining attention now: event weights decayed by age."""

    name = "trending"
    options_class = TrendingOptions
    generic_reason: ClassVar[str] = "trending"
    needs = frozenset({"interactions", "timestamps"})
    options: TrendingOptions

    def _item_weights(self, dataset: Dataset) -> np.ndarray:
        events = dataset.events
        if len(events) == 0:
            return np.zeros(dataset.n_items)
        chosen = np.flatnonzero(_window(dataset, self.options.window_days) & (events.weight > 0))
        stamps = events.timestamp[chosen]
        known = stamps > 0
        latest = stamps[known].max() if known.any() else 0.0
        age_days = np.where(known, latest - stamps, 0.0) / SECONDS_PER_DAY
        decayed = events.weight[chosen] * 0.5 ** (age_days / self.options.half_life_days)
        return np.bincount(events.item_idx[chosen], weights=decayed, minlength=dataset.n_items)
