"""The snapshot every strategy trains on.

A :class:`Dataset` is built from the site's events (``Dataset.from_database``)
or from a file (``Dataset.from_file``), and is what ``Strategy.fit`` receives:
integer id maps, a sparse CSR subject x item matrix of summed implicit weights,
explicit ratings kept apart, the raw event log as columnar arrays (for time
splits), and item content (titles, texts, categories, attributes).

Both paths share one vectorised pipeline (:meth:`Dataset.from_raw`):

1. keep the event types that carry a preference (weight not 0, or ``None``
   for an explicit rating), optionally only the ``event_types`` asked for;
2. drop exact duplicates (same subject, item, type and timestamp);
3. drop the events of flagged subjects (bots): ``exclude_subjects``,
   ``PERSONALIZE["SNAPSHOT_MAX_SUBJECT_EVENTS"]`` and the
   ``PERSONALIZE["SNAPSHOT_BOT_FILTER"]`` hook;
4. apply ``MIN_ITEM_SUPPORT`` / ``MIN_SUBJECT_SUPPORT`` until both hold;
5. weight each event by its type (a rating counts ``RATING_WEIGHT``), decayed
   by age when ``TIME_DECAY_HALF_LIFE_DAYS`` is set;
6. sum the weights per (subject, item) into ``interactions`` and keep the
   latest rating per pair in ``ratings``.

Nothing here creates a Python object per event: the database rows are streamed
with ``values_list(...).iterator(chunk_size=...)`` and turned into arrays a
chunk at a time.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from django.utils.module_loading import import_string

from personalize.conf import personalize_settings
from personalize.training.readers import ItemContent, RawEvents, read

if TYPE_CHECKING:
    from personalize.strategies.base import History

SECONDS_PER_DAY = 86_400.0
#: Rounds of the minimum-support filter; each round can only shrink the data.
_MAX_SUPPORT_ROUNDS = 50


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

    # --- lookups ------------------------------------------------------------

    def item_index(self) -> dict[Any, int]:
        """Item id -> column (built on each call; cache it in hot loops)."""
        return {v: i for i, v in enumerate(self.item_ids.tolist())}

    def subject_index(self) -> dict[Any, int]:
        """Subject id -> row (built on each call; cache it in hot loops)."""
        return {v: i for i, v in enumerate(self.subject_ids.tolist())}

    def history(self, subject_id: Any) -> History:
        """What ``subject_id`` did in this snapshot, oldest first, as a History.

        The same shape ``personalize.tracking.history.subject_history`` gives at
        serving time: one entry per event with its (decayed) weight; explicit
        ratings in ``ratings``. An unknown subject gets an empty history.
        """
        from personalize.strategies.base import History

        rows = np.flatnonzero(self.subject_ids == subject_id)
        if rows.size == 0:
            return History(subject_id=subject_id)
        chosen = np.flatnonzero(self.events.subject_idx == rows[0])
        chosen = chosen[np.argsort(self.events.timestamp[chosen], kind="stable")]
        ids = self.item_ids[self.events.item_idx[chosen]].tolist()
        rating = self.events.rating[chosen]
        rated = np.flatnonzero(np.isfinite(rating))
        has_time = bool(np.any(self.events.timestamp[chosen] > 0))
        return History(
            item_ids=ids,
            weights=self.events.weight[chosen].tolist(),
            timestamps=self.events.timestamp[chosen].tolist() if has_time else None,
            ratings={ids[n]: float(rating[n]) for n in rated.tolist()},
            subject_id=subject_id,
        )

    def with_events(self, mask: np.ndarray) -> Dataset:
        """A dataset with the same id maps and content, trained on a subset of events.

        ``interactions`` and ``ratings`` are rebuilt from the selected events,
        so rows and columns keep their meaning (what evaluation splits need).

        Args:
            mask: bool mask or index array over ``events``.
        """
        events = self.events.subset(mask)
        interactions, ratings = _matrices(events, self.n_subjects, self.n_items)
        return dataclasses.replace(
            self, events=events, interactions=interactions,
            ratings=ratings if self.ratings is not None else None,
            meta={**self.meta, "n_events": len(events)},
        )

    # --- builders -----------------------------------------------------------

    @classmethod
    def from_file(
        cls,
        fmt: str,
        path: str | Path,
        *,
        event_types: Iterable[str] | None = None,
        include_catalog: bool = True,
        exclude_subjects: Iterable[Any] = (),
        min_item_support: int | None = None,
        min_subject_support: int | None = None,
        half_life_days: float | None = None,
        event_weights: dict[str, float | None] | None = None,
        **reader_options: Any,
    ) -> Dataset:
        """A snapshot read from a data set on disk.

        Args:
            fmt: ``"ml100k"``, ``"ml-latest"``, ``"ml1m"``, ``"amazon"`` or
                ``"csv"`` (see :mod:`personalize.training.readers`).
            path: the data set's folder or main file.
            event_types: keep only these types (see :meth:`from_raw`).
            include_catalog: give every item of the file's catalog a column.
            exclude_subjects: raw subject ids whose events are dropped.
            min_item_support: default ``MIN_ITEM_SUPPORT``.
            min_subject_support: default ``MIN_SUBJECT_SUPPORT``.
            half_life_days: default ``TIME_DECAY_HALF_LIFE_DAYS``.
            event_weights: type -> weight; default the configured types.
            **reader_options: passed to the reader (``part="train"`` for
                ``amazon``).

        Returns:
            The dataset; ``meta["source"]`` names the format and path.
        """
        started = time.perf_counter()
        raw, content = read(fmt, path, **reader_options)
        dataset = cls.from_raw(
            raw, content, event_types=event_types, include_catalog=include_catalog,
            exclude_subjects=exclude_subjects, min_item_support=min_item_support,
            min_subject_support=min_subject_support, half_life_days=half_life_days,
            event_weights=event_weights,
        )
        dataset.meta.update(
            source=f"file:{fmt}", path=str(path), reader_options=reader_options,
            build_seconds=round(time.perf_counter() - started, 3),
        )
        return dataset

    @classmethod
    def from_arrays(
        cls,
        subjects: Sequence[Any] | np.ndarray,
        items: Sequence[Any] | np.ndarray,
        types: Sequence[str] | np.ndarray | str = "view",
        values: Sequence[float | None] | np.ndarray | None = None,
        timestamps: Sequence[float] | np.ndarray | None = None,
        *,
        content: ItemContent | None = None,
        **options: Any,
    ) -> Dataset:
        """A snapshot from parallel sequences (tests, imports, notebooks).

        Args:
            subjects: subject id of each event.
            items: item id of each event.
            types: the type of each event, or one type for all.
            values: the value of each event (a rating), ``None``/NaN for none.
            timestamps: POSIX seconds of each event (0 when unknown).
            content: item titles, texts, categories and attributes.
            **options: as in :meth:`from_raw` (``event_types`` there filters).
        """
        from personalize.training.readers import normalize_ids

        n = len(subjects)
        if isinstance(types, str):
            names, codes = [types], np.zeros(n, dtype=np.int16)
        else:
            unique, inverse = np.unique(np.asarray(types, dtype=str), return_inverse=True)
            names, codes = [str(u) for u in unique], inverse.astype(np.int16)
        raw = RawEvents(
            subjects=normalize_ids(subjects), items=normalize_ids(items), types=codes,
            type_names=names,
            values=(np.full(n, np.nan) if values is None
                    else np.asarray(values, dtype=np.float64)),
            timestamps=(np.zeros(n) if timestamps is None
                        else np.asarray(timestamps, dtype=np.float64)),
        )
        dataset = cls.from_raw(raw, content, **options)
        dataset.meta.setdefault("source", "arrays")
        return dataset

    @classmethod
    def from_database(
        cls,
        since: datetime | None = None,
        until: datetime | None = None,
        event_types: Iterable[str] | None = None,
        *,
        include_catalog: bool = True,
        exclude_subjects: Iterable[Any] = (),
        min_item_support: int | None = None,
        min_subject_support: int | None = None,
        half_life_days: float | None = None,
        event_weights: dict[str, float | None] | None = None,
        chunk_size: int | None = None,
        using: str | None = None,
    ) -> Dataset:
        """A snapshot of the site's events (``Subject.pk`` x ``Item.pk``).

        Rows are streamed with ``values_list(...).iterator(chunk_size=...)``
        (a server-side cursor on PostgreSQL) and converted to arrays a chunk
        at a time; timestamps are converted to epoch seconds by the database.

        Args:
            since: keep events at or after this moment.
            until: keep events before this moment; also the reference time of
                time decay (default: the latest kept event).
            event_types: keep only these types (default: every preference type).
            include_catalog: also give every available Item without events a
                column, so content models can recommend new items.
            exclude_subjects: ``Subject.pk`` values to leave out (flagged bots).
            min_item_support: default ``MIN_ITEM_SUPPORT``.
            min_subject_support: default ``MIN_SUBJECT_SUPPORT``.
            half_life_days: default ``TIME_DECAY_HALF_LIFE_DAYS``.
            event_weights: type -> weight; default the configured types.
            chunk_size: rows per fetch (default ``SNAPSHOT_CHUNK_SIZE``).
            using: the database alias (default: the router's choice for Event).

        Returns:
            The dataset; ``meta`` records the window and filter counts.
        """
        from django.db import transaction

        from personalize.models import Event

        started = time.perf_counter()
        weights = dict(event_weights if event_weights is not None
                       else personalize_settings.event_weights)
        wanted = _wanted_types(weights, event_types)
        queryset = Event.objects.filter(item__isnull=False, event_type__in=wanted)
        if using:
            queryset = queryset.using(using)
        if since is not None:
            queryset = queryset.filter(timestamp__gte=since)
        if until is not None:
            queryset = queryset.filter(timestamp__lt=until)
        chunk_size = chunk_size or personalize_settings.SNAPSHOT_CHUNK_SIZE
        # Inside a transaction PostgreSQL streams the server-side cursor as it is
        # read; outside one Django declares it WITH HOLD, which materialises the
        # whole result on the server before the first row arrives.
        with transaction.atomic(using=queryset.db):
            raw = _stream_events(queryset.order_by(), chunk_size)
            content = _catalog_content(using, only_ids=None if include_catalog else raw.items)
        dataset = cls.from_raw(
            raw, content, event_types=wanted, include_catalog=include_catalog,
            exclude_subjects=exclude_subjects, min_item_support=min_item_support,
            min_subject_support=min_subject_support, half_life_days=half_life_days,
            event_weights=weights,
            reference_time=until.timestamp() if until is not None else None,
        )
        dataset.meta.update(
            source="database", since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            build_seconds=round(time.perf_counter() - started, 3),
        )
        return dataset

    @classmethod
    def from_raw(
        cls,
        raw: RawEvents,
        content: ItemContent | None = None,
        *,
        event_types: Iterable[str] | None = None,
        include_catalog: bool = True,
        exclude_subjects: Iterable[Any] = (),
        min_item_support: int | None = None,
        min_subject_support: int | None = None,
        half_life_days: float | None = None,
        event_weights: dict[str, float | None] | None = None,
        reference_time: float | None = None,
    ) -> Dataset:
        """Run the snapshot pipeline (see the module docstring) over raw events.

        Args:
            raw: the events as read.
            content: what is known about items (ids need not match the events').
            event_types: keep only these types (default: every type whose
                weight is not 0).
            include_catalog: give every item in ``content`` a column, even one
                without kept events (it gets an empty column).
            exclude_subjects: raw subject ids whose events are dropped.
            min_item_support: default ``MIN_ITEM_SUPPORT``.
            min_subject_support: default ``MIN_SUBJECT_SUPPORT``.
            half_life_days: default ``TIME_DECAY_HALF_LIFE_DAYS`` (``None``: off).
            event_weights: type -> weight (``None`` for ratings); default the
                configured ``EVENT_TYPES`` merged with ``EXTRA_EVENT_TYPES``.
            reference_time: "now" for time decay (default: the latest event).
        """
        s = personalize_settings
        weights = dict(event_weights if event_weights is not None else s.event_weights)
        min_item = int(s.MIN_ITEM_SUPPORT if min_item_support is None else min_item_support)
        min_subject = int(
            s.MIN_SUBJECT_SUPPORT if min_subject_support is None else min_subject_support
        )
        if half_life_days is None:
            half_life_days = s.TIME_DECAY_HALF_LIFE_DAYS
        stats: dict[str, int] = {"n_events_read": len(raw)}

        # 1. event types -> weights; drop unknown and non-preference types
        wanted = set(_wanted_types(weights, event_types))
        type_weight = np.array(
            [np.nan if weights.get(name, 0.0) is None else float(weights.get(name) or 0.0)
             for name in raw.type_names] or [0.0], dtype=np.float64,
        )
        type_kept = np.array([name in wanted for name in raw.type_names] or [False])
        stats["n_unknown_type"] = int(
            np.isin(raw.types, [n for n, t in enumerate(raw.type_names) if t not in weights]).sum()
        )
        keep = type_kept[raw.types] if len(raw) else np.zeros(0, dtype=bool)
        is_rating = np.isnan(type_weight[raw.types]) if len(raw) else keep
        # a rating without a value says nothing
        keep &= ~(is_rating & np.isnan(raw.values))
        stats["n_type_filtered"] = int(len(raw) - keep.sum())

        subject_ids, subject_codes = _factorize(raw.subjects)
        item_raw_ids, item_codes = _factorize(raw.items)

        # 2. exact duplicates: same subject, item, type and timestamp
        index = np.flatnonzero(keep)
        duplicates = _duplicates(
            index, (subject_codes * max(len(item_raw_ids), 1) + item_codes)
            * max(len(raw.type_names), 1) + raw.types, raw.timestamps,
        )
        keep[duplicates] = False
        stats["n_duplicates"] = len(duplicates)

        # 3. flagged subjects (bots)
        flagged = _flagged_subjects(subject_ids, subject_codes[keep], exclude_subjects)
        bot_events = keep & flagged[subject_codes]
        stats["n_bot_events"] = int(bot_events.sum())
        stats["n_bot_subjects"] = int(flagged.sum())
        keep &= ~bot_events

        # 4. minimum support, repeated until it holds for items and subjects
        keep, dropped = _apply_support(
            keep, subject_codes, item_codes, len(subject_ids), len(item_raw_ids),
            min_item, min_subject,
        )
        stats["n_support_filtered"] = dropped

        # 5. compact the id maps and weight the events
        index = np.flatnonzero(keep)
        kept_subjects = np.flatnonzero(np.bincount(subject_codes[index],
                                                   minlength=len(subject_ids)))
        kept_items = np.flatnonzero(np.bincount(item_codes[index], minlength=len(item_raw_ids)))
        final_subject_ids = subject_ids[kept_subjects]
        item_ids = item_raw_ids[kept_items]
        event_item_ids = item_ids
        if include_catalog and content is not None and len(content):
            catalog_ids = _catalog_ids(content)
            if len(item_ids) and catalog_ids.dtype.kind != item_ids.dtype.kind:
                # integer ids on one side, strings on the other: compare as strings
                catalog_ids, event_item_ids = catalog_ids.astype(str), item_ids.astype(str)
            item_ids = (np.union1d(event_item_ids, catalog_ids) if len(item_ids)
                        else catalog_ids)
        subject_row = np.full(len(subject_ids), -1, dtype=np.int64)
        subject_row[kept_subjects] = np.arange(len(kept_subjects))
        item_column = np.searchsorted(item_ids, event_item_ids)
        item_col = np.full(len(item_raw_ids), -1, dtype=np.int64)
        item_col[kept_items] = item_column

        type_of = raw.types[index]
        rating_event = np.isnan(type_weight[type_of])
        weight = np.where(rating_event, float(s.RATING_WEIGHT), type_weight[type_of])
        timestamps = raw.timestamps[index]
        reference = None
        if half_life_days:
            known = timestamps > 0
            if known.any():
                reference = float(reference_time if reference_time is not None
                                  else timestamps[known].max())
                age_days = np.maximum(reference - timestamps, 0.0) / SECONDS_PER_DAY
                decay = np.where(known, 0.5 ** (age_days / float(half_life_days)), 1.0)
                weight = weight * decay
        rating = np.where(rating_event, raw.values[index], np.nan)

        # the log in time order (stable: same-time events keep their read order)
        chronological = np.argsort(timestamps, kind="stable")
        used_names = sorted({raw.type_names[t] for t in np.unique(type_of).tolist()})
        remap = np.zeros(max(len(raw.type_names), 1), dtype=np.int16)
        for code, name in enumerate(raw.type_names):
            if name in used_names:
                remap[code] = used_names.index(name)
        events = EventLog(
            subject_idx=subject_row[subject_codes[index]][chronological].astype(np.int32),
            item_idx=item_col[item_codes[index]][chronological].astype(np.int32),
            weight=weight[chronological].astype(np.float32),
            rating=rating[chronological].astype(np.float32),
            timestamp=timestamps[chronological].astype(np.float64),
            event_type=remap[type_of][chronological],
        )
        interactions, ratings = _matrices(events, len(final_subject_ids), len(item_ids))
        titles, texts, categories, attributes, available = _align_content(item_ids, content)
        stats["n_events"] = len(events)
        return cls(
            subject_ids=final_subject_ids, item_ids=item_ids, interactions=interactions,
            events=events, event_types=used_names,
            ratings=ratings if bool(rating_event.any()) else None,
            item_titles=titles, item_texts=texts, item_categories=categories,
            item_attributes=attributes, item_available=available,
            meta={
                **stats,
                "event_weights": {k: weights[k] for k in used_names},
                "rating_weight": float(s.RATING_WEIGHT),
                "min_item_support": min_item, "min_subject_support": min_subject,
                "half_life_days": half_life_days, "reference_time": reference,
            },
        )


# --- pipeline helpers ---------------------------------------------------------


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _duplicates(index: np.ndarray, key: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Events of ``index`` repeating an earlier one's ``key`` and timestamp.

    One cheap sort on the integer key finds the (few) events whose key repeats;
    only those are sorted again by time to compare timestamps.
    """
    if len(index) < 2:
        return np.empty(0, dtype=np.int64)
    keys = key[index]
    order = np.argsort(keys)
    repeat = keys[order][1:] == keys[order][:-1]
    if not repeat.any():
        return np.empty(0, dtype=np.int64)
    grouped = np.zeros(len(order), dtype=bool)
    grouped[1:] |= repeat
    grouped[:-1] |= repeat
    candidates = index[order[grouped]]
    candidates = candidates[np.lexsort((timestamps[candidates], key[candidates]))]
    same = (np.diff(key[candidates]) == 0) & (np.diff(timestamps[candidates]) == 0)
    return candidates[1:][same]


def _wanted_types(
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


def _flagged_subjects(
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


def _apply_support(
    keep: np.ndarray, subject_codes: np.ndarray, item_codes: np.ndarray,
    n_subjects: int, n_items: int, min_item: int, min_subject: int,
) -> tuple[np.ndarray, int]:
    """Drop events of items/subjects below their minimum distinct support."""
    if min_item <= 1 and min_subject <= 1:
        return keep, 0
    before = int(keep.sum())
    keep = keep.copy()
    for _ in range(_MAX_SUPPORT_ROUNDS):
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


def _matrices(
    events: EventLog, n_subjects: int, n_items: int
) -> tuple[sp.csr_array, sp.csr_array]:
    """Summed weights per pair, and the latest rating per pair."""
    shape = (n_subjects, n_items)
    interactions = sp.csr_array(
        (events.weight.astype(np.float32),
         (events.subject_idx.astype(np.int64), events.item_idx.astype(np.int64))),
        shape=shape,
    )
    interactions.sum_duplicates()
    rated = np.flatnonzero(np.isfinite(events.rating))
    if rated.size:
        keys = events.subject_idx[rated].astype(np.int64) * max(n_items, 1) + events.item_idx[rated]
        # the log is in time order: the last occurrence of a pair is its latest rating
        reverse_unique, first = np.unique(keys[::-1], return_index=True)
        latest = rated[::-1][first]
        ratings = sp.csr_array(
            (events.rating[latest].astype(np.float32),
             (reverse_unique // max(n_items, 1), reverse_unique % max(n_items, 1))),
            shape=shape,
        )
    else:
        ratings = sp.csr_array(shape, dtype=np.float32)
    return interactions, ratings


def _catalog_ids(content: ItemContent) -> np.ndarray:
    ids = np.asarray(content.ids)
    if content.available is not None:
        ids = ids[np.asarray(content.available, dtype=bool)]
    return np.unique(ids)


def _align_content(
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
    for source, target in zip(np.flatnonzero(found).tolist(), position[found].tolist(),
                              strict=True):
        if content.titles:
            titles[target] = content.titles[source]
        if content.texts:
            texts[target] = content.texts[source] or titles[target]
        if content.categories:
            categories[target] = list(content.categories[source])
        if content.attributes:
            attributes[target] = dict(content.attributes[source])
    if content.available is not None:
        available[position[found]] = np.asarray(content.available, dtype=bool)[found]
    return titles, texts, categories, attributes, available


# --- database helpers -----------------------------------------------------------


def _epoch_expression(vendor: str) -> Any:
    """A database expression for the event time in POSIX seconds, or None."""
    from django.db.models import F, FloatField, Func

    class EpochSeconds(Func):
        output_field = FloatField()

        def get_db_converters(self, connection: Any) -> list[Any]:
            # The SQL already yields a float: skip the expression's per-row float()
            # converter, which costs more than everything else in a million-row scan.
            return self.output_field.get_db_converters(connection)

        def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
            return self.as_sql(
                compiler, connection,
                template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)",
                **extra,
            )

        def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
            # julianday keeps the sub-second part that strftime('%s') drops
            return self.as_sql(
                compiler, connection,
                template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)", **extra,
            )

        def as_mysql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
            return self.as_sql(compiler, connection, template="UNIX_TIMESTAMP(%(expressions)s)",
                               **extra)

    if vendor in ("postgresql", "sqlite", "mysql"):
        return EpochSeconds(F("timestamp"))
    return None


def _stream_events(queryset: Any, chunk_size: int) -> RawEvents:
    """Stream ``(subject, item, type, value, time)`` rows into arrays, a chunk at a time."""
    from django.db import connections

    vendor = connections[queryset.db].vendor
    epoch = _epoch_expression(vendor)
    if epoch is not None:
        rows = queryset.annotate(_epoch=epoch).values_list(
            "subject_id", "item_id", "event_type", "value", "_epoch"
        )
    else:
        rows = queryset.values_list("subject_id", "item_id", "event_type", "value", "timestamp")
    iterator = rows.iterator(chunk_size=chunk_size)
    subjects, items, types, values, stamps = [], [], [], [], []
    type_names: list[str] = []
    code_of: dict[str, int] = {}
    while True:
        chunk = list(itertools.islice(iterator, chunk_size))
        if not chunk:
            break
        s, i, t, v, ts = zip(*chunk, strict=True)
        subjects.append(np.fromiter(s, dtype=np.int64, count=len(s)))
        items.append(np.fromiter(i, dtype=np.int64, count=len(i)))
        for name in set(t) - code_of.keys():
            code_of[name] = len(type_names)
            type_names.append(name)
        types.append(np.fromiter(map(code_of.__getitem__, t), dtype=np.int16, count=len(t)))
        # None (no value) becomes NaN in a float array
        values.append(np.array(v, dtype=np.float64))
        if epoch is None:
            ts = tuple(moment.timestamp() for moment in ts)
        stamps.append(np.array(ts, dtype=np.float64))
        del chunk
    if not subjects:
        return RawEvents(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int16),
                         [], np.empty(0), np.empty(0))
    return RawEvents(
        subjects=np.concatenate(subjects), items=np.concatenate(items),
        types=np.concatenate(types), type_names=type_names,
        values=np.concatenate(values), timestamps=np.concatenate(stamps),
    )


def _catalog_content(using: str | None, only_ids: np.ndarray | None) -> ItemContent:
    """Item rows as content: every item, or only ``only_ids`` (one query, streamed)."""
    from personalize.models import Item

    queryset = Item.objects.order_by("pk")
    if using:
        queryset = queryset.using(using)
    ids, titles, texts, categories, attributes, available = [], [], [], [], [], []
    rows = queryset.values_list("pk", "title", "text", "categories", "attributes", "available")
    wanted = None if only_ids is None else set(np.unique(only_ids).tolist())
    for pk, title, text, cats, attrs, avail in rows.iterator(chunk_size=2000):
        if wanted is not None and pk not in wanted:
            continue
        ids.append(pk)
        titles.append(title or "")
        texts.append(text or title or "")
        categories.append([str(c) for c in cats] if isinstance(cats, list) else [])
        attributes.append(attrs if isinstance(attrs, dict) else {})
        available.append(bool(avail))
    return ItemContent(
        np.asarray(ids, dtype=np.int64), titles, texts, categories, attributes,
        np.asarray(available, dtype=bool),
    )
