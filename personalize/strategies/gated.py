"""A hybrid whose part weights follow the subject's history length and the item's age.

``Gated`` blends the normalised scores of its parts like
:class:`~personalize.strategies.hybrid.Blend`, but each part has one weight
per history-length bucket: a content model can lead for a subject with one or
two interactions and collaborative filtering for one with twenty. The
buckets default to the evaluation's (``0``, ``1-2``, ``3-5``, ``6-20``,
``21+``; :data:`personalize.evaluation.breakdown.HISTORY_BUCKETS`), so the
weights can be read off its ``by_history`` results. Items first seen less than
``new_item_days`` before the data's end (or never seen in the training
events: a product added since) also get ``new_item_boost`` times the
``content`` part's normalised score: collaborative filtering cannot know
them, the content part can::

    PERSONALIZE = {"STRATEGIES": {
        ...,
        "gated": ("personalize.strategies.gated.Gated", {
            "strategies": {"ease": [0, 0.3, 0.6, 0.8, 0.9],
                           "embeddings": [0, 0.7, 0.4, 0.2, 0.1],
                           "popular": [1, 0, 0, 0, 0]},
            "content": "embeddings", "new_item_days": 14, "new_item_boost": 0.5,
        }),
    }}

Artifact layout (``artifact_version`` 1): the parts as in a ``Blend``
(``"<name>/<array>"``), plus ``item_ids`` and ``first_seen`` (float64 POSIX
seconds of each item's first training event; NaN for an item without one);
``meta["reference_time"]`` is the training data's latest timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from personalize.dataset import SECONDS_PER_DAY, Dataset
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend, Options, Scored
from personalize.strategies.common import positions
from personalize.strategies.history import History
from personalize.strategies.hybrid import HybridStrategy, normalised_part_scores, unpack_part
from personalize.strategies.ranking import top_k

#: The lowest history length of each bucket after the first (which starts at 0).
DEFAULT_BUCKETS = (1, 3, 6, 21)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


@dataclass(frozen=True)
class GatedOptions(Options):
    """Options of :class:`Gated`.

    Attributes:
        strategies: configured strategy name -> its weight in each history
            bucket (one weight >= 0 per bucket; every bucket needs a positive one).
        buckets: the lowest history length (distinct items) of each bucket
            after the first, increasing; the default matches the evaluation's.
        candidates: how many items each part proposes (at least ``k``).
        content: the part whose score is boosted for new items ("": none).
        new_item_days: an item first seen fewer days than this before the
            latest training event, or never seen, is new (``None``: no boost).
        new_item_boost: what a new item gains per unit of ``content``'s
            normalised score.
    """

    strategies: dict[str, list[float]] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: list(DEFAULT_BUCKETS))
    candidates: int = 100
    content: str = ""
    new_item_days: float | None = None
    new_item_boost: float = 0.5

    def validate(self) -> None:
        buckets = self.buckets
        if (not isinstance(buckets, list | tuple)
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in buckets)
                or any(b < 1 for b in buckets)
                or any(a >= b for a, b in pairwise(buckets))):
            raise ValueError(f"buckets must be increasing positive integers, got {buckets!r}")
        if not isinstance(self.strategies, dict) or not self.strategies:
            raise ValueError("strategies must name at least one strategy with its weights")
        n = len(buckets) + 1
        for name, weights in self.strategies.items():
            if (not isinstance(weights, list | tuple) or len(weights) != n
                    or not all(_is_number(w) and w >= 0 for w in weights)):
                raise ValueError(f"strategies[{name!r}] must be {n} weights >= 0 (one per "
                                 f"history bucket), got {weights!r}")
        for bucket in range(n):
            if not any(weights[bucket] for weights in self.strategies.values()):
                raise ValueError(f"strategies must give history bucket {bucket} "
                                 "a positive weight")
        if not isinstance(self.candidates, int) or self.candidates < 1:
            raise ValueError(f"candidates must be a positive integer, got {self.candidates!r}")
        if not isinstance(self.content, str) or (
            self.content and self.content not in self.strategies
        ):
            raise ValueError(f"content must be one of the strategies or '', "
                             f"got {self.content!r}")
        if self.new_item_days is not None:
            if not _is_number(self.new_item_days) or self.new_item_days <= 0:
                raise ValueError("new_item_days must be a positive number or None, "
                                 f"got {self.new_item_days!r}")
            if not self.content:
                raise ValueError("new_item_days needs content: the part to boost")
        if not _is_number(self.new_item_boost) or self.new_item_boost < 0:
            raise ValueError(f"new_item_boost must be a number >= 0, "
                             f"got {self.new_item_boost!r}")


class Gated(HybridStrategy):
    """Part weights chosen by the history's length; new items lean on the content part."""

    name = "gated"
    options_class = GatedOptions
    options: GatedOptions

    def part_names(self) -> list[str]:
        return list(self.options.strategies)

    def fit(self, dataset: Dataset) -> Artifact:
        """Fit the parts, and keep each item's first training event time."""
        artifact = super().fit(dataset)
        events = dataset.events
        known = events.timestamp > 0  # 0: unknown time
        first = np.full(dataset.n_items, np.inf)
        np.minimum.at(first, events.item_idx[known], events.timestamp[known])
        seen = np.zeros(dataset.n_items, dtype=bool)
        seen[events.item_idx] = True
        first[seen & ~np.isfinite(first)] = -np.inf  # seen, at an unknown time: old
        first[~seen] = np.nan
        artifact.arrays["item_ids"] = np.asarray(dataset.item_ids)
        artifact.arrays["first_seen"] = first
        artifact.meta["reference_time"] = float(events.timestamp.max()) if len(events) else 0.0
        return artifact

    def bucket(self, history: History) -> int:
        """The index of ``history``'s bucket: by its distinct items, rated ones included."""
        length = len(set(history.item_ids) | set(history.ratings))
        return int(np.searchsorted(np.asarray(self.options.buckets), length, side="right"))

    def is_new(self, artifact: Artifact, history: History, item_ids: np.ndarray) -> np.ndarray:
        """Whether each item is new: first seen under ``new_item_days`` ago, or never."""
        days = self.options.new_item_days
        if days is None or not len(item_ids):
            return np.zeros(len(item_ids), dtype=bool)
        now = float(artifact.meta.get("reference_time", 0.0))
        if history.timestamps is not None and len(history.timestamps):
            now = max(now, float(np.max(history.timestamps)))
        first = np.full(len(item_ids), np.nan)
        columns, found = positions(artifact, item_ids)
        first[found] = artifact["first_seen"][columns]
        with np.errstate(invalid="ignore"):
            recent = now - first < days * SECONDS_PER_DAY
        return np.isnan(first) | recent

    def contributions(
        self, artifact: Artifact, history: History, pool: int,
        exclude: Iterable[Any] = (), extra: Sequence[Any] = (),
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The parts that answered, the candidates, and each part's share of their scores.

        A candidate's score is the column sum of the ``(parts, candidates)`` shares.

        Raises:
            CannotRecommend: no part with a weight can recommend for this history.
        """
        self.check_artifact(artifact)
        opts = self.options
        bucket = self.bucket(history)
        boosting = bool(opts.content and opts.new_item_days is not None and opts.new_item_boost)
        names = [name for name, weights in opts.strategies.items()
                 if weights[bucket] or (boosting and name == opts.content)]
        answered, candidates, scores = normalised_part_scores(
            artifact, history, names, pool, exclude, extra
        )
        weights = np.asarray([opts.strategies[name][bucket] for name in answered], dtype=float)
        shares = weights[:, None] * scores
        if boosting and opts.content in answered:
            row = answered.index(opts.content)
            new = self.is_new(artifact, history, candidates)
            shares[row] += opts.new_item_boost * new * scores[row]
        return answered, candidates, shares

    def recommend(
        self, artifact: Artifact, history: History, k: int, exclude: Iterable[Any] = ()
    ) -> Scored:
        """The ``k`` best items by the bucket's weighted sum of normalised scores."""
        self.check_artifact(artifact)
        if k <= 0:
            return []
        _, candidates, shares = self.contributions(
            artifact, history, max(self.options.candidates, k), exclude
        )
        if not candidates.size:
            return []
        total = shares.sum(axis=0)
        best = top_k(total, k)
        return list(zip(candidates[best].tolist(), total[best].tolist(), strict=True))

    def leading_parts(
        self, artifact: Artifact, history: History, item_ids: Sequence[Any]
    ) -> list[str | None]:
        """The part with the largest share of each item's score (``None``: no part scores it)."""
        if not len(item_ids):
            return []
        try:
            answered, candidates, shares = self.contributions(
                artifact, history, self.options.candidates, extra=list(item_ids)
            )
        except CannotRecommend:
            return [None] * len(item_ids)
        where = np.searchsorted(candidates, np.asarray(list(item_ids), dtype=candidates.dtype))
        leads: list[str | None] = []
        for column in where.tolist():
            part = shares[:, column]
            leads.append(answered[int(np.argmax(part))] if part.max() > 0 else None)
        return leads

    def explain(self, artifact: Artifact, history: History, item_id: Any) -> Any:
        """The reason the leading part gives (see :meth:`leading_parts`), else the first part's."""
        return self.explain_many(artifact, history, [item_id])[0]

    def explain_many(
        self, artifact: Artifact, history: History, item_ids: Sequence[Any]
    ) -> list[Any]:
        """Each item's reason from the part that led its score, in one scoring pass."""
        leads = self.leading_parts(artifact, history, item_ids)
        answers: list[Any] = [None] * len(item_ids)
        for name in dict.fromkeys(lead for lead in leads if lead is not None):
            slots = [n for n, lead in enumerate(leads) if lead == name]
            strategy, part = unpack_part(artifact, name)
            reasons = strategy.explain_many(part, history, [item_ids[n] for n in slots])
            for slot, reason in zip(slots, reasons, strict=True):
                answers[slot] = reason
        open_slots = [n for n, lead in enumerate(leads) if lead is None]
        for name in self.part_names():  # no part scores them: the first part with a reason
            if not open_slots:
                break
            strategy, part = unpack_part(artifact, name)
            reasons = strategy.explain_many(part, history, [item_ids[n] for n in open_slots])
            for slot, reason in zip(open_slots, reasons, strict=True):
                answers[slot] = reason
            open_slots = [slot for slot in open_slots if answers[slot] is None]
        return answers
