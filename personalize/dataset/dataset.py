"""The snapshot every strategy trains on.

A :class:`Dataset` is built from the site's events
(:func:`personalize.training.snapshot.database_snapshot`), from a file
(:meth:`Dataset.from_file`) or from arrays (:meth:`Dataset.from_arrays`), and is
what ``Strategy.fit`` receives: integer id maps, a sparse CSR subject x item
matrix of summed implicit weights, explicit ratings kept apart, the kept events
as columnar arrays (for time splits), and item content (titles, texts,
categories, attributes).

Every path shares one vectorised pipeline (:meth:`Dataset.from_raw`):

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
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from personalize.conf import personalize_settings
from personalize.dataset.eventlog import EventLog
from personalize.dataset.files import read
from personalize.dataset.keys import time_order
from personalize.dataset.pipeline import (
    align_content,
    apply_support,
    catalog_ids,
    factorize,
    find_duplicates,
    flagged_subjects,
    pair_matrices,
    wanted_types,
)
from personalize.dataset.raw import ItemContent, RawEvents, normalize_ids

SECONDS_PER_DAY = 86_400.0


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
        **reader_kwargs: Any,
    ) -> Dataset:
        """A snapshot read from a data set on disk.

        Args:
            fmt: ``"ml100k"``, ``"ml-latest"``, ``"ml1m"``, ``"amazon"`` or
                ``"csv"`` (see :mod:`personalize.dataset.files`).
            path: the data set's folder or main file.
            event_types: keep only these types (see :meth:`from_raw`).
            include_catalog: give every item of the file's catalog a column.
            exclude_subjects: raw subject ids whose events are dropped.
            min_item_support: default ``MIN_ITEM_SUPPORT``.
            min_subject_support: default ``MIN_SUBJECT_SUPPORT``.
            half_life_days: default ``TIME_DECAY_HALF_LIFE_DAYS``.
            event_weights: type -> weight; default the configured types.
            **reader_kwargs: passed to the reader (``part="train"`` for
                ``amazon``).

        Returns:
            The dataset; ``meta["source"]`` names the format and path.
        """
        started = time.perf_counter()
        raw, content = read(fmt, path, **reader_kwargs)
        dataset = cls.from_raw(
            raw, content, event_types=event_types, include_catalog=include_catalog,
            exclude_subjects=exclude_subjects, min_item_support=min_item_support,
            min_subject_support=min_subject_support, half_life_days=half_life_days,
            event_weights=event_weights,
        )
        dataset.meta.update(
            source=f"file:{fmt}", path=str(path), reader_kwargs=reader_kwargs,
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
        wanted = set(wanted_types(weights, event_types))
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

        subject_ids, subject_codes = factorize(raw.subjects)
        item_raw_ids, item_codes = factorize(raw.items)

        # 2. exact duplicates: same subject, item, type and timestamp
        index = np.flatnonzero(keep)
        n_types = max(len(raw.type_names), 1)
        duplicates = find_duplicates(
            index, (subject_codes * max(len(item_raw_ids), 1) + item_codes) * n_types + raw.types,
            len(subject_ids) * max(len(item_raw_ids), 1) * n_types, raw.timestamps,
        )
        keep[duplicates] = False
        stats["n_duplicates"] = len(duplicates)

        # 3. flagged subjects (bots)
        flagged = flagged_subjects(subject_ids, subject_codes[keep], exclude_subjects)
        bot_events = keep & flagged[subject_codes]
        stats["n_bot_events"] = int(bot_events.sum())
        stats["n_bot_subjects"] = int(flagged.sum())
        keep &= ~bot_events

        # 4. minimum support, repeated until it holds for items and subjects
        keep, dropped = apply_support(
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
            catalog = catalog_ids(content)
            if len(item_ids) and catalog.dtype.kind != item_ids.dtype.kind:
                # integer ids on one side, strings on the other: compare as strings
                catalog, event_item_ids = catalog.astype(str), item_ids.astype(str)
            item_ids = np.union1d(event_item_ids, catalog) if len(item_ids) else catalog
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
        titles, texts, categories, attributes, available = align_content(item_ids, content)
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
