"""The steps of the snapshot pipeline (see :meth:`personalize.dataset.Dataset.from_raw`).

Each step works on whole columns: groupings are sorts of packed integer keys
(:mod:`personalize.dataset.keys`), never a Python loop over events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.utils.module_loading import import_string

from personalize.conf import personalize_settings
from personalize.dataset.eventlog import EventLog
from personalize.dataset.keys import csr_from_keys, stable_order
from personalize.dataset.raw import ItemContent

#: Rounds of the minimum-support filter; each round can only shrink the data.
MAX_SUPPORT_ROUNDS = 50


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(uniques, codes)`` with ``uniques[codes] == values``; uniques sorted.

    Integer ids in a compact range (database primary keys) take a linear-time
    path through a lookup table instead of a sort.
    """
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        span = high - low + 1
        if span <= 4 * len(values) + 1_000_000:
            offset = values - low
            present = np.zeros(span, dtype=bool)
            present[offset] = True
            lookup = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(values.dtype) + low, lookup[offset]
    uniques, codes = np.unique(values, return_inverse=True)
    return uniques, codes.astype(np.int64).ravel()


def find_duplicates(
    index: np.ndarray, key: np.ndarray, bound: int, timestamps: np.ndarray
) -> np.ndarray:
    """Events of ``index`` repeating an earlier one's ``key`` (in ``[0, bound)``) and timestamp.

    One sort on the integer key finds the events whose key repeats; only those
    are sorted again by time to compare timestamps.
    """
    if len(index) < 2:
        return np.empty(0, dtype=np.int64)
    keys = key[index]
    order = stable_order(keys, bound)
    ordered = keys[order]
    repeat = ordered[1:] == ordered[:-1]
    if not repeat.any():
        return np.empty(0, dtype=np.int64)
    grouped = np.zeros(len(order), dtype=bool)
    grouped[1:] |= repeat
    grouped[:-1] |= repeat
    candidates = index[order[grouped]]
    candidates = candidates[np.lexsort((timestamps[candidates], key[candidates]))]
    same = (np.diff(key[candidates]) == 0) & (np.diff(timestamps[candidates]) == 0)
    return candidates[1:][same]


def wanted_types(
    weights: dict[str, float | None], event_types: Iterable[str] | None
) -> list[str]:
    """Types that carry a preference, restricted to ``event_types`` when given."""
    preference = [name for name, w in weights.items() if w is None or w != 0]
    if event_types is None:
        return preference
    asked = list(event_types)
    unknown = sorted(set(asked) - set(weights))
    if unknown:
        raise ValueError(
            f"Unknown event type {unknown[0]!r}; configured: {', '.join(sorted(weights))}."
        )
    return [name for name in preference if name in asked]


def flagged_subjects(
    subject_ids: np.ndarray, kept_codes: np.ndarray, exclude_subjects: Iterable[Any]
) -> np.ndarray:
    """Bool per subject: drop all their events (excluded, too active, or hook-flagged)."""
    flagged = np.zeros(len(subject_ids), dtype=bool)
    excluded = list(exclude_subjects)
    if excluded:
        flagged |= np.isin(subject_ids, np.asarray(excluded, dtype=subject_ids.dtype))
    counts = np.bincount(kept_codes, minlength=len(subject_ids))
    limit = personalize_settings.SNAPSHOT_MAX_SUBJECT_EVENTS
    if limit is not None:
        flagged |= counts > int(limit)
    hook_path = personalize_settings.SNAPSHOT_BOT_FILTER
    if hook_path:
        hook: Callable[[np.ndarray, np.ndarray], Any] = (
            import_string(hook_path) if isinstance(hook_path, str) else hook_path
        )
        mask = np.asarray(hook(subject_ids, counts), dtype=bool)
        if mask.shape != flagged.shape:
            raise ValueError(
                f"SNAPSHOT_BOT_FILTER returned a mask of shape {mask.shape}; "
                f"expected {flagged.shape} (one bool per subject)."
            )
        flagged |= mask
    return flagged


def apply_support(
    keep: np.ndarray, subject_codes: np.ndarray, item_codes: np.ndarray,
    n_subjects: int, n_items: int, min_item: int, min_subject: int,
) -> tuple[np.ndarray, int]:
    """Drop events of items/subjects below their minimum distinct support."""
    if min_item <= 1 and min_subject <= 1:
        return keep, 0
    before = int(keep.sum())
    keep = keep.copy()
    for _ in range(MAX_SUPPORT_ROUNDS):
        index = np.flatnonzero(keep)
        pairs = np.sort(subject_codes[index] * n_items + item_codes[index])
        pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] if len(pairs) else pairs
        item_support = np.bincount(pairs % n_items, minlength=n_items)
        subject_support = np.bincount(pairs // n_items, minlength=n_subjects)
        bad = (item_support[item_codes[index]] < min_item) | (
            subject_support[subject_codes[index]] < min_subject
        )
        if not bad.any():
            break
        keep[index[bad]] = False
    return keep, before - int(keep.sum())


def pair_matrices(
    events: EventLog, n_subjects: int, n_items: int, drop_zeros: bool = False
) -> tuple[sp.csr_array, sp.csr_array]:
    """Summed weights per pair, and the latest rating per pair.

    The events are grouped by pair with one stable sort; since the log is in
    time order, the last rated event of a pair holds its latest rating. Weights
    are summed in float64 and rounded once.

    Args:
        events: the events, in time order.
        n_subjects: rows of both matrices.
        n_items: columns of both matrices.
        drop_zeros: leave out pairs whose weights sum to 0 (else they are stored).
    """
    shape = (n_subjects, n_items)
    width = max(n_items, 1)
    keys = events.subject_idx.astype(np.int64) * width + events.item_idx
    order = stable_order(keys, max(n_subjects, 1) * width)
    ordered = keys[order]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else order
    sums = (np.add.reduceat(events.weight[order].astype(np.float64), first) if len(first)
            else np.empty(0))
    pairs = ordered[first]
    if drop_zeros:
        pairs, sums = pairs[sums != 0], sums[sums != 0]
    interactions = csr_from_keys(pairs, sums.astype(np.float32), shape)
    rating = events.rating[order]
    rated = np.isfinite(rating)
    rated_keys, rating = ordered[rated], rating[rated]
    latest = (np.r_[rated_keys[1:] != rated_keys[:-1], True] if len(rated_keys)
              else np.zeros(0, dtype=bool))
    ratings = csr_from_keys(rated_keys[latest], rating[latest].astype(np.float32), shape)
    return interactions, ratings


def catalog_ids(content: ItemContent) -> np.ndarray:
    ids = np.asarray(content.ids)
    if content.available is not None:
        ids = ids[np.asarray(content.available, dtype=bool)]
    return np.unique(ids)


def align_content(
    item_ids: np.ndarray, content: ItemContent | None
) -> tuple[list[str], list[str], list[list[str]], list[dict[str, Any]], np.ndarray]:
    n = len(item_ids)
    titles, texts = [""] * n, [""] * n
    categories: list[list[str]] = [[] for _ in range(n)]
    attributes: list[dict[str, Any]] = [{} for _ in range(n)]
    available = np.ones(n, dtype=bool)
    if content is None or not len(content) or not n:
        return titles, texts, categories, attributes, available
    ids = np.asarray(content.ids)
    if ids.dtype.kind != item_ids.dtype.kind:
        try:
            ids = ids.astype(str) if item_ids.dtype.kind == "U" else ids.astype(item_ids.dtype)
        except ValueError:  # string ids that are not numbers match no integer id
            return titles, texts, categories, attributes, available
    position = np.searchsorted(item_ids, ids)
    found = (position < n) & (item_ids[np.minimum(position, n - 1)] == ids)
    # the content row of each item (-1: none); of repeated ids the last one read wins
    source = np.full(n, -1, dtype=np.int64)
    np.maximum.at(source, position[found], np.flatnonzero(found))
    rows = source.tolist()
    if content.titles:
        titles = [content.titles[row] if row >= 0 else "" for row in rows]
    if content.texts:
        texts = [(content.texts[row] or titles[target]) if row >= 0 else ""
                 for target, row in enumerate(rows)]
    if content.categories:
        categories = [list(content.categories[row]) if row >= 0 else [] for row in rows]
    if content.attributes:
        attributes = [dict(content.attributes[row]) if row >= 0 else {} for row in rows]
    if content.available is not None:
        available[position[found]] = np.asarray(content.available, dtype=bool)[found]
    return titles, texts, categories, attributes, available
