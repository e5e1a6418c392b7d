"""What one subject did, as a strategy sees it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from personalize.dataset import Dataset

ItemId = Any


@dataclass(frozen=True)
class History:
    """What one subject did, oldest first, as the strategy sees it.

    Attributes:
        item_ids: the dataset item ids interacted with.
        weights: the implicit-feedback weight of each interaction (same length).
        timestamps: POSIX seconds of each interaction, or ``None`` if unknown.
        ratings: explicit ratings keyed by item id, for rating models.
        subject_id: the dataset's id of the subject (``Subject.pk`` from the
            database), when known; factor models use it to find a trained vector.
        recency: the recency factor in ``(0, 1]`` of each interaction, already
            part of ``weights`` (serving's ``HISTORY_HALF_LIFE_HOURS``), or
            ``None`` (every one 1). A strategy that ignores the event weights
            (EASE's ``binary``) counts an item as its latest recency instead of 1.
    """

    item_ids: Sequence[ItemId] = ()
    weights: Sequence[float] | None = None
    timestamps: Sequence[float] | None = None
    ratings: dict[ItemId, float] = field(default_factory=dict)
    subject_id: Any = None
    recency: Sequence[float] | None = None

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def weight_array(self) -> np.ndarray:
        """The weights as float32 (1 per interaction when there are none)."""
        if self.weights is None:
            return np.ones(len(self.item_ids), dtype=np.float32)
        return np.asarray(self.weights, dtype=np.float32)

    @classmethod
    def from_dataset(cls, dataset: Dataset, subject_id: Any) -> History:
        """What ``subject_id`` did in a snapshot, oldest first.

        The same shape :func:`personalize.tracking.history.subject_history`
        gives at serving time: one entry per event with its (decayed) weight;
        explicit ratings in ``ratings``. An unknown subject gets an empty history.
        """
        rows = np.flatnonzero(dataset.subject_ids == subject_id)
        if rows.size == 0:
            return cls(subject_id=subject_id)
        events = dataset.events
        chosen = np.flatnonzero(events.subject_idx == rows[0])
        chosen = chosen[np.argsort(events.timestamp[chosen], kind="stable")]
        ids = dataset.item_ids[events.item_idx[chosen]].tolist()
        rating = events.rating[chosen]
        rated = np.flatnonzero(np.isfinite(rating))
        has_time = bool(np.any(events.timestamp[chosen] > 0))
        return cls(
            item_ids=ids,
            weights=events.weight[chosen].tolist(),
            timestamps=events.timestamp[chosen].tolist() if has_time else None,
            ratings={ids[n]: float(rating[n]) for n in rated.tolist()},
            subject_id=subject_id,
        )
