"""Events and item content as read, before the snapshot pipeline.

Both the database reader (:mod:`personalize.training.snapshot`) and the file
readers (:mod:`personalize.dataset.files`) produce these two columnar records;
:meth:`personalize.dataset.Dataset.from_raw` turns them into a snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DatasetFormatError(ValueError):
    """A file cannot be read as the format it was given as."""


@dataclass
class RawEvents:
    """Events as read, before any filtering: parallel arrays, one row per event.

    Attributes:
        subjects: raw subject ids (int64 or str).
        items: raw item ids (int64 or str).
        types: int16 code of each event's type into ``type_names``.
        type_names: the event type names.
        values: float64 value (a rating, seconds of dwell) or NaN.
        timestamps: float64 POSIX seconds, 0 where unknown.
    """

    subjects: np.ndarray
    items: np.ndarray
    types: np.ndarray
    type_names: list[str]
    values: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.subjects)

    @classmethod
    def ratings(
        cls, subjects: np.ndarray, items: np.ndarray, values: np.ndarray, timestamps: np.ndarray
    ) -> RawEvents:
        """Events that are all explicit ``rating`` events."""
        return cls(
            subjects=subjects, items=items, types=np.zeros(len(subjects), dtype=np.int16),
            type_names=["rating"], values=np.asarray(values, dtype=np.float64),
            timestamps=np.asarray(timestamps, dtype=np.float64),
        )


@dataclass
class ItemContent:
    """What is known about catalog items, one row per item (aligned lists)."""

    ids: np.ndarray
    titles: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    categories: list[list[str]] = field(default_factory=list)
    attributes: list[dict[str, Any]] = field(default_factory=list)
    available: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def normalize_ids(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """An id array: int64 when every id is an integer, else str.

    Args:
        values: ids as read (strings, numbers).

    Returns:
        A NumPy array of dtype int64 or unicode.
    """
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        if np.all(np.isfinite(array)) and np.all(array == np.floor(array)):
            return array.astype(np.int64)
        return array.astype(str)
    strings = array.astype(str)
    try:
        ints = strings.astype(np.int64)
    except ValueError:
        return strings
    # "007" and "7" are different ids: only convert when the round trip is exact
    if np.array_equal(ints.astype(str), strings):
        return ints
    return strings


def no_events() -> RawEvents:
    """An empty :class:`RawEvents`."""
    return RawEvents(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int16),
                     [], np.empty(0), np.empty(0))
