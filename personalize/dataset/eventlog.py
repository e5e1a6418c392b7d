"""The kept events of a snapshot, as parallel arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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

    def subset(self, mask: np.ndarray) -> EventLog:
        """The events where ``mask`` (bool or index array) selects."""
        return EventLog(
            subject_idx=self.subject_idx[mask], item_idx=self.item_idx[mask],
            weight=self.weight[mask], rating=self.rating[mask],
            timestamp=self.timestamp[mask], event_type=self.event_type[mask],
        )
