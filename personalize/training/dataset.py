"""The snapshot every strategy trains on.

A :class:`Dataset` is built from the site's events (``Dataset.from_database``)
or from a file (``Dataset.from_file``), and is what ``Strategy.fit`` receives:
integer id maps, a sparse CSR subject x item matrix of summed implicit weights,
explicit ratings kept apart, the raw event log as columnar arrays (for time
splits), and item content (titles, texts, categories, attributes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass
class EventLog:
    """One row per kept event, as parallel arrays (never one Python object per event)."""

    subject_idx: np.ndarray  # int32, row in Dataset.subject_ids
    item_idx: np.ndarray  # int32, row in Dataset.item_ids
    weight: np.ndarray  # float32, implicit weight of the event type
    rating: np.ndarray  # float32, explicit rating or NaN
    timestamp: np.ndarray  # float64, POSIX seconds (0 where unknown)
    event_type: np.ndarray  # int16 code into Dataset.event_types

    def __len__(self) -> int:
        return len(self.subject_idx)


@dataclass
class Dataset:
    """Interactions and content for one training run.

    Attributes:
        subject_ids: the original id of each matrix row (``Subject.pk`` from the DB).
        item_ids: the original id of each matrix column (``Item.pk`` from the DB).
        interactions: ``(n_subjects, n_items)`` float32 CSR of summed implicit
            weights (after optional time decay); negative sums are kept.
        ratings: ``(n_subjects, n_items)`` float32 CSR of the latest explicit
            rating per pair, or ``None`` when there are none.
        events: the kept events, columnar, for splits and sequence models.
        event_types: the event type name of each code in ``events.event_type``.
        item_titles, item_texts: one string per item ("" when unknown).
        item_categories: one list of category names per item.
        item_attributes: one dict per item.
        item_available: bool per item (True when unknown).
    """

    subject_ids: np.ndarray
    item_ids: np.ndarray
    interactions: sp.csr_array
    events: EventLog
    event_types: list[str] = field(default_factory=list)
    ratings: sp.csr_array | None = None
    item_titles: list[str] = field(default_factory=list)
    item_texts: list[str] = field(default_factory=list)
    item_categories: list[list[str]] = field(default_factory=list)
    item_attributes: list[dict[str, Any]] = field(default_factory=list)
    item_available: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_subjects(self) -> int:
        return len(self.subject_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)
