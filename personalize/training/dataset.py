"""The snapshot every strategy trains on.

A :class:`Dataset` is built from the site's events (``Dataset.from_database``)
or from a file (``Dataset.from_file``), and is what ``Strategy.fit`` receives:
integer id maps, a sparse CSR subject x item matrix of summed implicit weights,
explicit ratings kept apart, the raw event log as columnar arrays (for time
splits), and item content (titles, texts, categories, attributes).

Both paths share one vectorised pipeline (:meth:`Dataset.from_raw`):

1. keep the event types that carry a preference (weight not 0, or ``None``
   for an explicit rating), optionally only the ``event_types`` asked for;
2. drop exact duplicates (same subject, item, type and timestamp; the first
   one read is kept);
3. drop the events of flagged subjects (bots): ``exclude_subjects``,
   ``PERSONALIZE["SNAPSHOT_MAX_SUBJECT_EVENTS"]`` and the
   ``PERSONALIZE["SNAPSHOT_BOT_FILTER"]`` hook;
4. apply ``MIN_ITEM_SUPPORT`` / ``MIN_SUBJECT_SUPPORT`` until both hold;
5. weight each event by its type (a rating counts ``RATING_WEIGHT``), decayed
   by age when ``TIME_DECAY_HALF_LIFE_DAYS`` is set;
6. sum the weights per (subject, item) into ``interactions`` and keep the
   latest rating per pair in ``ratings``.

Nothing here creates a Python object per event: on PostgreSQL each page of
events arrives packed in a few binary values that NumPy reads in one call;
other databases' rows come from a plain cursor a chunk at a time. The
pipeline's groupings are sorts of packed integer keys, not hashing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
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
from personalize.sqltime import epoch_seconds
from personalize.training.keys import csr_from_keys, stable_order, time_order
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
        interactions, ratings = pair_matrices(events, self.n_subjects, self.n_items)
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

        At most ``chunk_size`` events per round trip, inside one transaction
        (see :func:`_stream_events`); timestamps become epoch seconds.

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
        from django.db import connections, transaction

        from personalize.models import Event

        started = time.perf_counter()
        weights = dict(event_weights if event_weights is not None
                       else personalize_settings.event_weights)
        wanted = _wanted_types(weights, event_types)
        queryset = Event.objects.all()
        if using:
            queryset = queryset.using(using)
        queryset = queryset.filter(item__isnull=False, event_type__in=wanted)
        if since is not None:
            queryset = queryset.filter(timestamp__gte=since)
        if until is not None:
            queryset = queryset.filter(timestamp__lt=until)
        chunk_size = chunk_size or personalize_settings.SNAPSHOT_CHUNK_SIZE
        # The events come in pages, a query each, and the item rows in another:
        # one transaction, which on PostgreSQL reads a single snapshot
        # (REPEATABLE READ, unless a caller's transaction is already open).
        connection = connections[queryset.db]
        outermost = not connection.in_atomic_block
        with transaction.atomic(using=queryset.db):
            if outermost and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            raw = _stream_events(queryset.order_by(), wanted, chunk_size)
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
        n_types = max(len(raw.type_names), 1)
        duplicates = _duplicates(
            index, (subject_codes * max(len(item_raw_ids), 1) + item_codes) * n_types + raw.types,
            len(subject_ids) * max(len(item_raw_ids), 1) * n_types, raw.timestamps,
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
        chronological = time_order(timestamps)
        present = np.flatnonzero(np.bincount(type_of, minlength=len(raw.type_names)))
        used_names = sorted({raw.type_names[t] for t in present.tolist()})
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
        interactions, ratings = pair_matrices(events, len(final_subject_ids), len(item_ids))
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


def _duplicates(
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


# --- database helpers -----------------------------------------------------------


def _type_code(type_names: Sequence[str]) -> Any:
    """A database expression for the position of ``event_type`` in ``type_names``."""
    from django.db.models import Case, IntegerField, Value, When

    return Case(*(When(event_type=name, then=Value(code)) for code, name in enumerate(type_names)),
                output_field=IntegerField())


def _no_events() -> RawEvents:
    return RawEvents(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int16),
                     [], np.empty(0), np.empty(0))


def _stream_events(queryset: Any, type_names: list[str], chunk_size: int) -> RawEvents:
    """Read ``(subject, item, type, value, time)`` of the queryset's events into arrays.

    ``queryset`` must only select events of ``type_names`` with an item; each
    event's type becomes its position in ``type_names``. PostgreSQL packs each
    page of events into one binary value (:func:`_stream_postgresql`); other
    databases stream plain rows from one cursor, ``chunk_size`` at a time.
    Either way no Python object is made per event beyond the DB-API row tuple.
    """
    from django.db import connections

    connection = connections[queryset.db]
    if not type_names:
        return _no_events()
    if connection.vendor == "postgresql":
        return _stream_postgresql(queryset, type_names, chunk_size)
    epoch = epoch_seconds(queryset.db)
    rows = queryset.annotate(_code=_type_code(type_names))
    if epoch is None:  # no exact epoch expression here: Django converts the datetimes
        iterator: Iterable[tuple[Any, ...]] = (
            (s, i, t, v, moment.timestamp()) for s, i, t, v, moment in rows.values_list(
                "subject_id", "item_id", "_code", "value", "timestamp",
            ).iterator(chunk_size=chunk_size)
        )
        return _rows_to_arrays(_batches(iterator, chunk_size), type_names)
    rows = rows.annotate(_epoch=epoch).values_list("subject_id", "item_id", "_code", "value",
                                                   "_epoch")
    # The compiled SQL on a plain cursor: every column is already an int or a float,
    # so Django's per-row converters would only cost time.
    sql, params = rows.query.get_compiler(using=queryset.db).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return _rows_to_arrays(iter(lambda: cursor.fetchmany(chunk_size), []), type_names)


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterable[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _rows_to_arrays(
    chunks: Iterable[Sequence[tuple[Any, ...]]], type_names: list[str]
) -> RawEvents:
    """``(subject, item, type code, value or None, epoch seconds)`` rows as RawEvents."""
    subjects, items, types, values, stamps = [], [], [], [], []
    for chunk in chunks:
        s, i, t, v, ts = zip(*chunk, strict=True)
        subjects.append(np.array(s, dtype=np.int64))
        items.append(np.array(i, dtype=np.int64))
        types.append(np.array(t, dtype=np.int16))
        values.append(np.array(v, dtype=np.float64))  # None (no value) becomes NaN
        stamps.append(np.array(ts, dtype=np.float64))
    if not subjects:
        return _no_events()
    return RawEvents(
        subjects=np.concatenate(subjects), items=np.concatenate(items),
        types=np.concatenate(types), type_names=list(type_names),
        values=np.concatenate(values), timestamps=np.concatenate(stamps),
    )


#: One event as :func:`_stream_postgresql` packs it: PostgreSQL's binary send
#: formats, big-endian and unpadded (32 bytes).
_PACKED_EVENT = np.dtype([("subject", ">i8"), ("item", ">i8"), ("value", ">f8"), ("time", ">i8")])
#: ``timestamptz_send`` counts microseconds from 2000-01-01 00:00 UTC.
_POSTGRES_EPOCH = 946_684_800.0
#: One page of events (``{events}`` selects type, subject, item, value, time
#: and key; the two parameters bound the key), each type's events packed into
#: one ``bytea``, with their count. PostgreSQL pushes the key range down into
#: the scan of the events table.
_PACK_EVENTS = (
    "SELECT e.type, count(*), string_agg(int8send(e.subject) || int8send(e.item) || "
    "float8send(COALESCE(e.value, 'NaN')) || timestamptz_send(e.moment), ''::bytea) "
    "FROM ({events}) AS e (type, subject, item, value, moment, key) "
    "WHERE e.key >= %s AND e.key < %s GROUP BY e.type"
)


def _stream_postgresql(queryset: Any, type_names: list[str], chunk_size: int) -> RawEvents:
    """Read the events a page at a time, each type's events in one packed value.

    A page is the events whose primary key lies in the next ``chunk_size``
    keys, so it holds at most that many rows (the memory of one page on
    either side) and the server reads it with one range scan. PostgreSQL packs
    a page's events with its binary send functions into one ``bytea`` per event
    type, which ``np.frombuffer`` reads without a loop: per-row transfer (a
    cursor's rows, or ``COPY`` whose every row is one message) costs more in the
    client than the scan costs in the server. Grouping by type spares a
    per-row ``CASE`` over the type names, and the timestamp travels as its raw
    microseconds, sparing a ``date_part`` per row.
    """
    import psycopg
    from django.db import connections
    from django.db.models import Max, Min

    from personalize.models import Event

    connection = connections[queryset.db]
    # the key range of all events: two index lookups, whatever the filters
    bounds = Event.objects.using(queryset.db).aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return _no_events()
    code_of = {name: code for code, name in enumerate(type_names)}
    events = queryset.values_list("event_type", "subject_id", "item_id", "value", "timestamp",
                                  "pk")
    # compiled once: only the key range changes from page to page
    sql, params = events.query.get_compiler(using=queryset.db).as_sql()
    sql = _PACK_EVENTS.format(events=sql)
    columns: list[list[np.ndarray]] = [[], [], [], [], []]
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        for low in range(int(bounds["low"]), int(bounds["high"]) + 1, chunk_size):
            # Django's own cursors bind client-side, and those cannot return
            # binary values (bytea would come as hex text)
            cursor.execute(sql, (*params, low, low + chunk_size), binary=True, prepare=False)
            for name, count, packed in sorted(cursor.fetchall()):
                packed = packed or b""
                if len(packed) != count * _PACKED_EVENT.itemsize:
                    # a NULL field drops its whole record from string_agg
                    raise ValueError(f"Expected {count} packed events, got {len(packed)} bytes.")
                records = np.frombuffer(packed, dtype=_PACKED_EVENT)
                # native columns now, so the page's bytes can go
                columns[0].append(records["subject"].astype(np.int64))
                columns[1].append(records["item"].astype(np.int64))
                columns[2].append(np.full(count, code_of[name], dtype=np.int16))
                columns[3].append(records["value"].astype(np.float64))
                columns[4].append(records["time"] / 1e6 + _POSTGRES_EPOCH)
    if not columns[0]:
        return _no_events()
    subjects, items, types, values, timestamps = (np.concatenate(c) for c in columns)
    return RawEvents(subjects=subjects, items=items, types=types, type_names=list(type_names),
                     values=values, timestamps=timestamps)


def _catalog_content(using: str | None, only_ids: np.ndarray | None) -> ItemContent:
    """Item rows as content: every item, or only ``only_ids`` (one query).

    The compiled query runs on a plain cursor and the JSON columns are decoded
    in one ``json.loads`` per column: Django's per-row converters cost more than
    the query on a catalog of thousands of items.
    """
    from django.db import connections

    from personalize.models import Item

    queryset = Item.objects.order_by("pk")
    if using:
        queryset = queryset.using(using)
    rows = queryset.values_list("pk", "title", "text", "categories", "attributes", "available")
    sql, params = rows.query.get_compiler(using=rows.db).as_sql()
    with connections[rows.db].cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    if only_ids is not None:
        wanted = set(np.unique(only_ids).tolist())
        fetched = [row for row in fetched if row[0] in wanted]
    if not fetched:
        return ItemContent(np.empty(0, dtype=np.int64), [], [], [], [],
                           np.empty(0, dtype=bool))
    ids, titles, texts, cats, attrs, available = zip(*fetched, strict=True)
    return ItemContent(
        np.asarray(ids, dtype=np.int64),
        [title or "" for title in titles],
        [text or title or "" for text, title in zip(texts, titles, strict=True)],
        [[str(c) for c in value] if isinstance(value, list) else [] for value in _json(cats)],
        [value if isinstance(value, dict) else {} for value in _json(attrs)],
        np.asarray([bool(a) for a in available], dtype=bool),
    )


def _json(values: Sequence[Any]) -> list[Any]:
    """JSON column values as Python objects, decoded in one call where they are text.

    Backends hand JSON back as its text (Django decodes it in a converter), or
    already decoded; NULL stays ``None``.
    """
    if all(isinstance(value, str) or value is None for value in values):
        try:
            decoded = json.loads("[" + ",".join("null" if v is None else v for v in values) + "]")
        except json.JSONDecodeError:
            decoded = None
        # a malformed value ("1, 2" would pass as two): decode one by one, as the field would
        if isinstance(decoded, list) and len(decoded) == len(values):
            return decoded
    return [_json_value(value) for value in values]


def _json_value(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:  # what JSONField.from_db_value does with bad JSON
        return value
