"""Split a :class:`~personalize.dataset.Dataset` into train and held-out parts.

Protocols:

``stratified``
    For each subject, a random ``1 - ratio`` of the items they interacted with
    is held out (Microsoft Recommenders' ``python_stratified_split``: the
    subject keeps ``round(ratio * n)`` items for training).
``temporal``
    One global time cut: events before the ``ratio`` quantile of event times
    train, later ones are held out. Items a subject already had before the cut
    are not held out again.
``leave-last-n``
    For each subject with more than ``n`` items, the ``n`` most recent items
    (by last event time, then by event order) are held out.
``kfold``
    Every (subject, item) pair is shuffled once and dealt into ``folds``
    contiguous parts (as Surprise's ``KFold``); each part is held out once.

The unit that is held out is a (subject, item) *pair*, never a single event:
holding out one of two views of an item would leave the item in the training
history and make it trivially "predictable". A split keeps the dataset's id
maps unchanged, so train and held-out matrices share row and column indices.

Held-out relevance is binary: a held-out pair is relevant when its summed
implicit weight is positive or it carries an explicit rating (every rated
item is relevant, the Microsoft Recommenders convention). Subjects left with
no training interaction are dropped from the held-out ranking matrix (but keep
their held-out ratings) unless the split is asked to ``keep_cold``: then they
stay, with an empty training history, and a strategy is measured on what it
serves a newcomer. Every split counts the subjects it left out of the ranking
by reason (:attr:`Split.dropped`).

Everything is vectorised over the event log and the CSR arrays.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from personalize.dataset import Dataset, EventLog
from personalize.dataset.keys import time_order
from personalize.dataset.pipeline import pair_matrices

PROTOCOLS = ("stratified", "temporal", "leave-last-n", "kfold")


@dataclass
class Split:
    """One train / held-out pair built from a dataset.

    Attributes:
        protocol: the protocol name (one of :data:`PROTOCOLS`).
        train: the training dataset (same ``subject_ids`` and ``item_ids``).
        test: ``(n_subjects, n_items)`` float32 CSR, 1.0 at each held-out
            relevant pair of a subject that has training data.
        test_ratings: ``(n_subjects, n_items)`` float32 CSR of held-out
            explicit ratings, or ``None`` when the dataset has no ratings.
        params: the protocol's parameters (ratio, n, seed, fold, ...).
        dropped: subjects left out of ``test``, by reason (reasons with no
            subject are absent).
        cold_subjects: subjects kept in ``test`` with no training history.
    """

    protocol: str
    train: Dataset
    test: sp.csr_array
    test_ratings: sp.csr_array | None = None
    params: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    cold_subjects: int = 0

    @property
    def test_subjects(self) -> np.ndarray:
        """Row indices of the subjects with at least one held-out relevant item."""
        return np.flatnonzero(np.diff(self.test.indptr) > 0)


# --- vectorised helpers -----------------------------------------------------


def _csr(matrix: Any, shape: tuple[int, int]) -> sp.csr_array:
    csr = sp.csr_array(matrix, shape=shape, copy=True)
    csr.sum_duplicates()
    csr.sort_indices()
    return csr


def _entry_keys(csr: sp.csr_array) -> np.ndarray:
    """One int64 key ``row * n_cols + col`` per stored entry, sorted (canonical CSR)."""
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return rows * csr.shape[1] + csr.indices.astype(np.int64)


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """``keys`` found in the sorted array ``sorted_keys`` (binary search, vectorised)."""
    if sorted_keys.size == 0 or keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    where = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[where] == keys


def _keep_entries(csr: sp.csr_array, keep: np.ndarray) -> sp.csr_array:
    """The CSR with only the stored entries where ``keep`` is true."""
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))[keep]
    indptr = np.zeros(csr.shape[0] + 1, dtype=csr.indptr.dtype)
    np.cumsum(np.bincount(rows, minlength=csr.shape[0]), out=indptr[1:])
    return sp.csr_array((csr.data[keep], csr.indices[keep], indptr), shape=csr.shape)


def _from_keys(keys: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    rows, cols = np.divmod(keys, shape[1])
    return _csr(sp.coo_array((values.astype(np.float32), (rows, cols)), shape=shape), shape)


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.union1d`` of two integer key arrays, by one sort (no hashing)."""
    keys = np.concatenate((a, b))
    keys.sort()
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys


def _subset_events(events: EventLog, mask: np.ndarray) -> EventLog:
    return EventLog(**{f.name: getattr(events, f.name)[mask] for f in dataclasses.fields(events)})


def _event_keys(dataset: Dataset) -> np.ndarray:
    events = dataset.events
    return events.subject_idx.astype(np.int64) * dataset.n_items + events.item_idx.astype(np.int64)


def _pairs(dataset: Dataset) -> np.ndarray:
    """Sorted keys of every (subject, item) pair with an interaction or a rating."""
    shape = (dataset.n_subjects, dataset.n_items)
    keys = _entry_keys(_csr(dataset.interactions, shape))
    if dataset.ratings is not None:
        keys = _sorted_union(keys, _entry_keys(_csr(dataset.ratings, shape)))
    return keys


def _values_at(csr: sp.csr_array | None, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, present) of ``csr`` at each key; value 0 where absent."""
    if csr is None:
        return np.zeros(keys.size, dtype=np.float32), np.zeros(keys.size, dtype=bool)
    entry_keys = _entry_keys(csr)
    if entry_keys.size == 0:
        return np.zeros(keys.size, dtype=np.float32), np.zeros(keys.size, dtype=bool)
    where = np.minimum(np.searchsorted(entry_keys, keys), entry_keys.size - 1)
    present = entry_keys[where] == keys
    return np.where(present, csr.data[where], 0).astype(np.float32), present


def _rank_within_subject(subject: np.ndarray, order_key: np.ndarray) -> np.ndarray:
    """0-based rank of each element inside its subject group, by ascending ``order_key``."""
    order = np.lexsort((order_key, subject))
    ranks = np.empty(subject.size, dtype=np.int64)
    counts = np.bincount(subject, minlength=int(subject.max()) + 1 if subject.size else 0)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ranks[order] = np.arange(subject.size) - starts[subject[order]]
    return ranks


def _holdout(dataset: Dataset, pair_keys: np.ndarray, test_mask: np.ndarray,
             protocol: str, params: dict[str, Any], reasons: _Reasons) -> Split:
    """A split that holds out the pairs ``pair_keys[test_mask]`` entirely."""
    shape = (dataset.n_subjects, dataset.n_items)
    test_keys = pair_keys[test_mask]
    interactions = _csr(dataset.interactions, shape)
    ratings = _csr(dataset.ratings, shape) if dataset.ratings is not None else None

    train_interactions = _keep_entries(interactions, ~_member(_entry_keys(interactions), test_keys))
    train_ratings = (
        _keep_entries(ratings, ~_member(_entry_keys(ratings), test_keys))
        if ratings is not None else None
    )
    train_events = _subset_events(dataset.events, ~_member(_event_keys(dataset), test_keys))

    weight, _ = _values_at(interactions, test_keys)
    rating, rated = _values_at(ratings, test_keys)
    relevant = (weight > 0) | rated
    test = _from_keys(test_keys[relevant], np.ones(int(relevant.sum())), shape)
    test_ratings = (_from_keys(test_keys[rated], rating[rated], shape)
                    if ratings is not None else None)
    held = np.zeros(shape[0], dtype=bool)
    held[test_keys // max(shape[1], 1)] = True
    return _finish(dataset, protocol, params, train_interactions, train_ratings, train_events,
                   test, test_ratings, held, reasons)


@dataclass(frozen=True)
class _Reasons:
    """How a protocol words why a subject is not evaluated."""

    no_test: str  # the subject has pairs but none was held out
    cold: str  # held out, but nothing left to train on (when cold subjects are dropped)
    keep_cold: bool = False
    no_interactions: str = "no interactions"
    no_relevant: str = "no relevant held-out item (only dislikes)"


def _finish(dataset: Dataset, protocol: str, params: dict[str, Any],
            interactions: sp.csr_array, ratings: sp.csr_array | None, events: EventLog,
            test: sp.csr_array, test_ratings: sp.csr_array | None, held: np.ndarray,
            reasons: _Reasons) -> Split:
    has_train = np.diff(interactions.indptr) > 0
    if ratings is not None:
        has_train |= np.diff(ratings.indptr) > 0
    has_pairs = np.zeros(dataset.n_subjects, dtype=bool)
    has_pairs[_pairs(dataset) // max(dataset.n_items, 1)] = True
    has_test = np.diff(test.indptr) > 0
    cold = has_test & ~has_train
    counts = {
        reasons.no_interactions: int(np.count_nonzero(~has_pairs)),
        reasons.no_test: int(np.count_nonzero(has_pairs & ~held)),
        reasons.no_relevant: int(np.count_nonzero(held & ~has_test)),
    }
    if not reasons.keep_cold:
        counts[reasons.cold] = int(np.count_nonzero(cold))
        test_rows = np.repeat(np.arange(test.shape[0]), np.diff(test.indptr))
        test = _keep_entries(test, has_train[test_rows])
    dropped = {reason: count for reason, count in counts.items() if count}
    params = {**params, "cold_subjects_dropped": 0 if reasons.keep_cold
              else int(np.count_nonzero(cold))}
    train = dataclasses.replace(
        dataset, interactions=interactions, ratings=ratings, events=events,
        meta={**dataset.meta, "split": {"protocol": protocol, **params}},
    )
    return Split(protocol=protocol, train=train, test=test, test_ratings=test_ratings,
                 params=params, dropped=dropped,
                 cold_subjects=int(np.count_nonzero(cold)) if reasons.keep_cold else 0)


def _check_ratio(ratio: float) -> None:
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be between 0 and 1 (exclusive), got {ratio}")


# --- protocols --------------------------------------------------------------


def stratified_split(dataset: Dataset, ratio: float = 0.75, seed: int = 42) -> Split:
    """Hold out a random ``1 - ratio`` share of each subject's items.

    Args:
        dataset: the full snapshot.
        ratio: share of each subject's items kept for training; a subject with
            ``n`` items keeps ``round(ratio * n)`` (half to even).
        seed: seeds the shuffle; the same seed gives the same split.

    Returns:
        The split.
    """
    _check_ratio(ratio)
    keys = _pairs(dataset)
    subject = keys // max(dataset.n_items, 1)
    rank = _rank_within_subject(subject, np.random.default_rng(seed).random(keys.size))
    n_pairs = np.bincount(subject, minlength=dataset.n_subjects)
    n_train = np.rint(ratio * n_pairs).astype(np.int64)
    return _holdout(dataset, keys, rank >= n_train[subject], "stratified",
                    {"ratio": ratio, "seed": seed},
                    _Reasons(no_test="too few items to hold one out",
                             cold="no training history"))


def leave_last_n_split(dataset: Dataset, n: int = 1, *, keep_cold: bool = False) -> Split:
    """Hold out each subject's ``n`` most recent items.

    Recency is a pair's latest event time; equal times (or no timestamps, as
    in the Amazon histories) fall back to the order of the event log. Subjects
    with ``n`` items or fewer keep them all for training and are not evaluated,
    unless ``keep_cold``: then all their items are held out and they are
    evaluated with an empty history, as the newcomers they were.

    Args:
        dataset: the full snapshot.
        n: how many items to hold out per subject.
        keep_cold: evaluate subjects with ``n`` items or fewer too.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    keys = _pairs(dataset)
    subject = keys // max(dataset.n_items, 1)
    # The last event of each pair: sort events by (key, time, position), take each key's last.
    event_keys = _event_keys(dataset)
    position = np.arange(event_keys.size, dtype=np.float64)
    order = np.lexsort((position, dataset.events.timestamp, event_keys))
    ordered_keys = event_keys[order]
    last = order[np.r_[ordered_keys[1:] != ordered_keys[:-1], True]] if order.size else order
    recency = np.full(keys.size, -1.0)
    time = np.full(keys.size, -np.inf)
    where = np.searchsorted(keys, event_keys[last])
    found = (where < keys.size) & (keys[np.minimum(where, keys.size - 1)] == event_keys[last])
    recency[where[found]] = position[last[found]]
    time[where[found]] = dataset.events.timestamp[last[found]]
    # Rank by (time, position) descending: 0 is the most recent pair.
    order_key = np.empty(keys.size, dtype=np.float64)
    combined = np.lexsort((recency, time))
    order_key[combined] = -np.arange(keys.size, dtype=np.float64)
    rank = _rank_within_subject(subject, order_key)
    n_pairs = np.bincount(subject, minlength=dataset.n_subjects)
    test_mask = (rank < n) & ((n_pairs[subject] > n) | keep_cold)
    return _holdout(dataset, keys, test_mask, "leave-last-n", {"n": n},
                    _Reasons(no_test=f"{n} item{'s' if n > 1 else ''} or fewer",
                             cold="no training history", keep_cold=keep_cold))


def kfold_splits(dataset: Dataset, folds: int = 5, seed: int = 42) -> list[Split]:
    """Deal every (subject, item) pair into ``folds`` parts; hold out each part once.

    Args:
        dataset: the full snapshot.
        folds: the number of folds (at least 2).
        seed: seeds the shuffle.

    Returns:
        ``folds`` splits; their held-out parts are disjoint and cover every pair.
    """
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    keys = _pairs(dataset)
    if keys.size < folds:
        raise ValueError(f"{keys.size} interactions cannot be dealt into {folds} folds")
    order = np.random.default_rng(seed).permutation(keys.size)
    splits = []
    for fold, part in enumerate(np.array_split(order, folds)):
        test_mask = np.zeros(keys.size, dtype=bool)
        test_mask[part] = True
        splits.append(_holdout(dataset, keys, test_mask, "kfold",
                               {"folds": folds, "fold": fold, "seed": seed},
                               _Reasons(no_test="nothing held out in this fold",
                                        cold="no training history")))
    return splits


def temporal_split(dataset: Dataset, ratio: float = 0.75, *, keep_cold: bool = False) -> Split:
    """One global time cut at the ``ratio`` quantile of event times.

    Events strictly before the cut train; the training matrix is rebuilt from
    them (summed weights, latest rating per pair). A pair is held out when it
    has an event at or after the cut and no training event at all.

    Args:
        dataset: the full snapshot; its events must carry timestamps.
        ratio: share of events (by time) before the cut.
        keep_cold: evaluate subjects seen only after the cut too (with an
            empty history) instead of dropping them.
    """
    _check_ratio(ratio)
    events = dataset.events
    if len(events) == 0 or not np.any(events.timestamp > 0):
        raise ValueError(
            "The temporal protocol needs events with timestamps; this dataset has none."
        )
    if np.any(events.timestamp[1:] < events.timestamp[:-1]):
        # a log built by hand; the builder's is in time order, which "latest" relies on
        events = _subset_events(events, time_order(events.timestamp))
    shape = (dataset.n_subjects, dataset.n_items)
    position = min(int(ratio * len(events)), len(events) - 1)
    cut = float(np.partition(events.timestamp, position)[position])
    before = events.timestamp < cut
    keys = events.subject_idx.astype(np.int64) * dataset.n_items + events.item_idx

    train_events = _subset_events(events, before)
    interactions, latest = pair_matrices(train_events, *shape, drop_zeros=True)
    ratings = latest if dataset.ratings is not None else None

    later = np.flatnonzero(~before)
    seen = _member(keys[later], _entry_keys(interactions))
    if ratings is not None:
        seen |= _member(keys[later], _entry_keys(ratings))
    weight_sum, test_ratings = pair_matrices(_subset_events(events, later[~seen]), *shape)
    relevant_keys = _entry_keys(weight_sum)[weight_sum.data > 0]
    if dataset.ratings is None:
        test_ratings = None
    else:
        relevant_keys = _sorted_union(relevant_keys, _entry_keys(test_ratings))
    test = _from_keys(relevant_keys, np.ones(relevant_keys.size), shape)
    held = np.zeros(shape[0], dtype=bool)
    held[events.subject_idx[later[~seen]]] = True
    return _finish(dataset, "temporal", {"ratio": ratio, "cut": cut}, interactions, ratings,
                   train_events, test, test_ratings, held,
                   _Reasons(no_test="only in the training period",
                            cold="only in the test period", keep_cold=keep_cold))


def hold_out_items(split: Split, item_idx: np.ndarray) -> Split:
    """Remove every training interaction, rating and event of some items.

    For cold-start checks: the items stay in the catalog (with their texts and
    categories) but no strategy sees anyone interact with them. The held-out
    matrices are unchanged.

    Args:
        split: a split to derive from.
        item_idx: column indices of the items to hide from training.
    """
    train = split.train
    hidden = np.zeros(train.n_items, dtype=bool)
    hidden[np.asarray(item_idx, dtype=np.int64)] = True
    shape = (train.n_subjects, train.n_items)
    interactions = _csr(train.interactions, shape)
    interactions = _keep_entries(interactions, ~hidden[interactions.indices])
    ratings = None
    if train.ratings is not None:
        ratings = _csr(train.ratings, shape)
        ratings = _keep_entries(ratings, ~hidden[ratings.indices])
    events = _subset_events(train.events, ~hidden[train.events.item_idx])
    params = {**split.params, "items_hidden": int(hidden.sum())}
    new_train = dataclasses.replace(
        train, interactions=interactions, ratings=ratings, events=events,
        meta={**train.meta, "split": {"protocol": split.protocol, **params}},
    )
    return dataclasses.replace(split, train=new_train, params=params)


def make_splits(dataset: Dataset, protocol: str = "stratified", *, ratio: float = 0.75,
                n: int = 1, folds: int = 5, seed: int = 42,
                keep_cold: bool = False) -> list[Split]:
    """The split(s) a protocol gives: one for hold-out protocols, ``folds`` for ``kfold``.

    Args:
        dataset: the full snapshot.
        protocol: one of :data:`PROTOCOLS`.
        ratio: train share for ``stratified`` and ``temporal``.
        n: items held out per subject for ``leave-last-n``.
        folds: number of folds for ``kfold``.
        seed: seeds the random protocols.
        keep_cold: ``temporal`` and ``leave-last-n`` keep the subjects with no
            training history (the other protocols always drop them).

    Raises:
        ValueError: unknown protocol or out-of-range parameter.
    """
    if protocol == "stratified":
        return [stratified_split(dataset, ratio=ratio, seed=seed)]
    if protocol == "temporal":
        return [temporal_split(dataset, ratio=ratio, keep_cold=keep_cold)]
    if protocol == "leave-last-n":
        return [leave_last_n_split(dataset, n=n, keep_cold=keep_cold)]
    if protocol == "kfold":
        return kfold_splits(dataset, folds=folds, seed=seed)
    raise ValueError(f"Unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
