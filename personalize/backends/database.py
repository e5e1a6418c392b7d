"""The reads and writes whose cost differs by database, the portable way and the fast ones.

:func:`store_for` gives the :class:`Store` of a database alias. This class works
through the ORM alone; :mod:`personalize.backends.postgresql` overrides what
PostgreSQL does much faster (chosen by the connection's vendor and, for the
binary reader, by the driver's capability). Both pass the same conformance
tests (``tests/backends/``), on SQLite and on PostgreSQL. What a store does:

* bulk event inserts (``insert``) and the training snapshot's event reader
  (``read_events``, ``consistent_read``);
* the two reads of a request: the subject behind a user or a visitor id
  (``subject``) and a subject's latest events (``latest_events``);
* row locks on subjects (``lock_subjects``) that serialise a consent
  withdrawal or an erasure with the ingestion of the same subject's events.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connections, transaction
from django.db.models import QuerySet
from django.db.transaction import TransactionManagementError
from django.utils.module_loading import import_string

from personalize.dataset.raw import RawEvents, no_events
from personalize.models import Event, Subject

#: IN-list chunk size that every backend accepts (SQLite's old limit is 999).
IN_CHUNK = 900
#: The fields a subject lookup loads; the timestamps stay deferred (loaded on access).
SUBJECT_FIELDS = ("id", "key", "user_id", "visitor_id", "merged_into_id")
#: The event store of each database vendor that has one of its own (the
#: portable :class:`Store` serves the others), as Django names backends.
VENDOR_STORES = {"postgresql": "personalize.backends.postgresql.PostgreSQLStore"}


@dataclass(slots=True)
class EventRow:
    """One validated event, its subject and item resolved, ready to insert."""

    index: int  # its position in the caller's batch
    event_id: str  # canonical UUID text
    subject_id: int
    item_id: int | None
    event_type: str
    value: float | None
    context: dict[str, Any]
    timestamp: datetime


def chunked(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    """``values`` in slices of at most ``size`` (for ``IN`` lists)."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


class Store:
    """Event writes and reads on one database, through the ORM."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def subject(self, *, user_id: Any = None, visitor_id: str | None = None) -> Subject | None:
        """The subject of a user, or the live anonymous subject of a visitor id.

        Only a subject that is neither signed in nor merged answers to a visitor id.
        Loads :data:`SUBJECT_FIELDS`; the others are loaded on access.
        """
        subjects = Subject.objects.using(self.alias).only(*SUBJECT_FIELDS)
        if user_id is not None:
            return subjects.filter(user_id=user_id).first()
        return subjects.filter(visitor_id=visitor_id, user__isnull=True,
                               merged_into__isnull=True).first()

    def latest_events(self, subject_id: int, event_types: Sequence[str], limit: int
                      ) -> list[tuple[int, str, float | None, float]]:
        """``(item, type, value, epoch seconds)`` of a subject's latest item events, newest first.

        Of ``event_types`` only, at most ``limit``; the (subject, -timestamp, -id)
        index gives them in this order.
        """
        if not event_types:
            return []
        rows = (Event.objects.using(self.alias)
                .filter(subject_id=subject_id, item__isnull=False, event_type__in=event_types)
                .order_by("-timestamp", "-id")
                .values_list("item_id", "event_type", "value", "timestamp")[:limit])
        return [(item, kind, value, moment.timestamp()) for item, kind, value, moment in rows]

    def lock_subjects(self, subject_ids: Iterable[int], *, exclusive: bool) -> set[int]:
        """Lock the subjects' rows until the surrounding transaction ends.

        Writers of a subject's events take the lock shared, a consent
        withdrawal or an erasure takes it exclusive: whichever comes second
        waits for the first to commit, and then sees what it did. Rows are
        locked in primary key order, so two lockers of overlapping sets cannot
        deadlock. Must run inside ``transaction.atomic(using=alias)``.

        Here both kinds are ``SELECT ... FOR UPDATE`` (ignored by databases
        without row locks, such as SQLite, which serialise writers anyway).

        Args:
            subject_ids: Subject pks.
            exclusive: ``True`` to change what the subjects hold (withdraw, erase),
                ``False`` to add events for them.

        Returns:
            The pks of the subjects that exist (an erased one is missing).
        """
        require_transaction(self.alias)
        found: set[int] = set()
        for chunk in chunked(sorted(set(subject_ids))):
            found.update(Subject.objects.using(self.alias).select_for_update()
                         .filter(pk__in=chunk).order_by("pk").values_list("pk", flat=True))
        return found

    def insert(self, rows: Sequence[EventRow], source: str) -> dict[str, int | None]:
        """Insert the rows whose ``event_id`` is not stored yet.

        Returns:
            ``event_id -> Event.pk`` of the rows inserted (the pk is ``None``
            where the database does not report it).
        """
        with transaction.atomic(using=self.alias):
            stored = self.existing_ids([row.event_id for row in rows])
            fresh = [row for row in rows if row.event_id not in stored]
            Event.objects.using(self.alias).bulk_create([
                Event(event_id=row.event_id, subject_id=row.subject_id, item_id=row.item_id,
                      event_type=row.event_type, value=row.value, context=row.context,
                      timestamp=row.timestamp, source=source)
                for row in fresh
            ], ignore_conflicts=True)
        return dict.fromkeys((row.event_id for row in fresh), None)

    def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` are stored already (as canonical UUID text)."""
        stored: set[str] = set()
        for chunk in chunked(event_ids):
            stored.update(str(uid) for uid in Event.objects.using(self.alias)
                          .filter(event_id__in=chunk).values_list("event_id", flat=True))
        return stored

    @contextmanager
    def consistent_read(self) -> Iterator[None]:
        """A transaction in which several queries read the same snapshot of the data."""
        with transaction.atomic(using=self.alias):
            yield

    def read_events(self, events: QuerySet[Event], type_names: list[str],
                    chunk_size: int) -> RawEvents:
        """``(subject, item, type code, value, epoch seconds)`` of ``events``, as arrays.

        ``events`` selects events of ``type_names`` that have an item; each
        event's type becomes its position in ``type_names``. Rows stream from
        one cursor, ``chunk_size`` at a time.
        """
        if not type_names:
            return no_events()
        rows = (events.using(self.alias).order_by()
                .values_list("subject_id", "item_id", "event_type", "value", "timestamp")
                .iterator(chunk_size=chunk_size))
        code_of = {name: code for code, name in enumerate(type_names)}
        return _rows_to_arrays(_batches(rows, chunk_size), code_of, type_names)


def _batches(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _rows_to_arrays(chunks: Iterable[Sequence[tuple[Any, ...]]], code_of: dict[str, int],
                    type_names: list[str]) -> RawEvents:
    subjects, items, types, values, stamps = [], [], [], [], []
    for chunk in chunks:
        s, i, t, v, moments = zip(*chunk, strict=True)
        subjects.append(np.array(s, dtype=np.int64))
        items.append(np.array(i, dtype=np.int64))
        types.append(np.array([code_of[name] for name in t], dtype=np.int16))
        values.append(np.array(v, dtype=np.float64))  # None (no value) becomes NaN
        stamps.append(np.array([moment.timestamp() for moment in moments], dtype=np.float64))
    if not subjects:
        return no_events()
    return RawEvents(
        subjects=np.concatenate(subjects), items=np.concatenate(items),
        types=np.concatenate(types), type_names=list(type_names),
        values=np.concatenate(values), timestamps=np.concatenate(stamps),
    )


def require_transaction(alias: str) -> None:
    """Raise unless a transaction is open on ``alias`` (a row lock outside one ends at once)."""
    if not connections[alias].in_atomic_block:
        raise TransactionManagementError(
            "Subject row locks must be taken inside transaction.atomic(); "
            "outside one they are released as soon as they are taken."
        )


def store_for(alias: str) -> Store:
    """The :class:`Store` of a database alias: its vendor's own, else the portable one."""
    path = VENDOR_STORES.get(connections[alias].vendor)
    store_class: type[Store] = import_string(path) if path else Store
    return store_class(alias)
