"""PostgreSQL's event store: one statement per batch insert, a binary snapshot reader.

* :meth:`PostgreSQLStore.insert` is a single ``INSERT ... SELECT FROM
  jsonb_to_recordset(%s) ON CONFLICT (event_id) DO NOTHING RETURNING``: one
  parameter instead of nine per row (the driver quotes one string and the
  server unpacks it, several times faster than binding thousands of values),
  atomic on its own, and ``RETURNING`` tells duplicates apart exactly, even
  against a concurrent replay. Rows go in ``event_id`` order, so concurrent
  batches that share ids take their row locks in the same order.
* :meth:`PostgreSQLStore.read_events` with psycopg 3 reads each page of
  events as one ``bytea`` per event type, packed by the server's binary send
  functions, which ``np.frombuffer`` reads without a loop: per-row transfer
  costs more in the client than the scan in the server. With psycopg2 (no
  binary results through its cursor) it is the portable reader.
* :meth:`PostgreSQLStore.consistent_read` runs in ``REPEATABLE READ``, so
  the pages of a snapshot see one state of the table.
* :meth:`PostgreSQLStore.lock_subjects` takes ``FOR KEY SHARE`` for writers
  of events (they do not wait for each other, only for a withdrawal or an
  erasure, which takes ``FOR UPDATE``), in one statement, in key order.
* :meth:`PostgreSQLStore.subject` and :meth:`PostgreSQLStore.latest_events`,
  the two reads of a request, are one fixed SQL statement each on Django's
  cursor: building the equivalent queryset costs several times what the
  indexed query costs the server (about 0.4 ms against 0.15 ms for a subject,
  0.7 ms against 0.25 ms for a history).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.db import connections, transaction
from django.db.models import Max, Min, QuerySet
from django.utils import timezone

from personalize.backends.database import SUBJECT_FIELDS, EventRow, Store, require_transaction
from personalize.dataset.raw import RawEvents, no_events
from personalize.models import Event, Subject

try:  # psycopg 3; a site on psycopg2 reads through the portable path
    import psycopg
except ImportError:  # pragma: no cover - depends on the site's driver
    psycopg = None  # type: ignore[assignment]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TARGETS = ("event_id", "subject", "item", "event_type", "value", "context", "timestamp",
            "source", "received_at")

#: One event as :data:`_PACK_EVENTS` packs it: PostgreSQL's binary send formats,
#: big-endian and unpadded (32 bytes).
_PACKED_EVENT = np.dtype([("subject", ">i8"), ("item", ">i8"), ("value", ">f8"), ("time", ">i8")])
#: ``timestamptz_send`` counts microseconds from 2000-01-01 00:00 UTC.
_POSTGRES_EPOCH_US = 946_684_800_000_000
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


def _insert_sql(quote: Any) -> str:
    """The batch insert; only the model's own quoted identifiers are interpolated."""
    meta = Event._meta
    column = {f.name: f.column for f in meta.concrete_fields}
    return (
        f"INSERT INTO {quote(meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(column[name]) for name in _TARGETS)}) "
        "SELECT r.e, r.s, r.i, r.t, r.v, COALESCE(r.c, '{}'::jsonb), "
        "TIMESTAMPTZ 'epoch' + r.us * INTERVAL '1 microsecond', %s, %s "
        "FROM jsonb_to_recordset(%s::jsonb) AS r(e uuid, s bigint, i bigint, t text, "
        "v double precision, c jsonb, us bigint) "
        f"ON CONFLICT ({quote(column['event_id'])}) DO NOTHING "
        f"RETURNING {quote(column['event_id'])}::text, {quote(column['id'])}"
    )


def _columns(model: Any, quote: Any) -> dict[str, str]:
    """Each field's quoted column, by attribute name (``subject_id``) and by name (``subject``)."""
    columns = {}
    for field in model._meta.concrete_fields:
        columns[field.attname] = columns[field.name] = quote(field.column)
    return columns


def _subject_sql(quote: Any, by: str) -> str:
    column = _columns(Subject, quote)
    where = f"{column[by]} = %s"
    if by == "visitor_id":  # only a live anonymous subject answers to a visitor id
        where += f" AND {column['user_id']} IS NULL AND {column['merged_into_id']} IS NULL"
    fields = ", ".join(column[name] for name in SUBJECT_FIELDS)
    return f"SELECT {fields} FROM {quote(Subject._meta.db_table)} WHERE {where}"  # noqa: S608


def _latest_sql(quote: Any) -> str:
    column = _columns(Event, quote)
    return (
        f"SELECT {column['item_id']}, {column['event_type']}, {column['value']}, "  # noqa: S608
        f"{column['timestamp']} FROM {quote(Event._meta.db_table)} "
        f"WHERE {column['subject_id']} = %s AND {column['item_id']} IS NOT NULL "
        f"AND {column['event_type']} = ANY(%s) "
        f"ORDER BY {column['timestamp']} DESC, {column['id']} DESC LIMIT %s"
    )


def _lock_sql(quote: Any, exclusive: bool) -> str:
    column = _columns(Subject, quote)["id"]
    # FOR KEY SHARE is also what the foreign key check of an event insert takes;
    # only FOR UPDATE conflicts with it.
    mode = "UPDATE" if exclusive else "KEY SHARE"
    return (f"SELECT {column} FROM {quote(Subject._meta.db_table)} "  # noqa: S608
            f"WHERE {column} = ANY(%s) ORDER BY {column} FOR {mode}")


class PostgreSQLStore(Store):
    """:class:`Store` with PostgreSQL's bulk insert, binary reader and request reads."""

    def subject(self, *, user_id: Any = None, visitor_id: str | None = None) -> Subject | None:
        """One statement on Django's cursor (see the module docstring)."""
        connection = connections[self.alias]
        by, value = ("user_id", user_id) if user_id is not None else ("visitor_id", visitor_id)
        with connection.cursor() as cursor:
            cursor.execute(_subject_sql(connection.ops.quote_name, by), [value])
            row = cursor.fetchone()
        return Subject.from_db(self.alias, SUBJECT_FIELDS, row) if row else None

    def latest_events(self, subject_id: int, event_types: Sequence[str], limit: int
                      ) -> list[tuple[int, str, float | None, float]]:
        """One statement on Django's cursor (see the module docstring)."""
        if not event_types:
            return []
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            cursor.execute(_latest_sql(connection.ops.quote_name),
                           [subject_id, list(event_types), limit])
            rows = cursor.fetchall()
        # psycopg gives timestamptz columns as aware datetimes
        return [(item, kind, value, moment.timestamp()) for item, kind, value, moment in rows]

    def lock_subjects(self, subject_ids: Iterable[int], *, exclusive: bool) -> set[int]:
        """One statement; shared locks are ``FOR KEY SHARE`` (see the module docstring)."""
        require_transaction(self.alias)
        ids = sorted(set(subject_ids))
        if not ids:
            return set()
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            cursor.execute(_lock_sql(connection.ops.quote_name, exclusive), [ids])
            return {pk for (pk,) in cursor.fetchall()}

    def insert(self, rows: Sequence[EventRow], source: str) -> dict[str, int | None]:
        """One statement for the whole batch (see the module docstring)."""
        connection = connections[self.alias]
        payload = json.dumps([
            {"e": row.event_id, "s": row.subject_id, "i": row.item_id, "t": row.event_type,
             "v": row.value, "c": row.context,
             # exact integer microseconds since the epoch
             "us": (row.timestamp - _EPOCH) // _MICROSECOND}
            for row in sorted(rows, key=lambda row: row.event_id)
        ], ensure_ascii=False, allow_nan=False)
        with connection.cursor() as cursor:
            cursor.execute(_insert_sql(connection.ops.quote_name),
                           [source, timezone.now(), payload])
            return dict(cursor.fetchall())

    @contextmanager
    def consistent_read(self) -> Iterator[None]:
        """A transaction in ``REPEATABLE READ`` (unless a caller's transaction is open)."""
        connection = connections[self.alias]
        outermost = not connection.in_atomic_block
        with transaction.atomic(using=self.alias):
            if outermost:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield

    def read_events(self, events: QuerySet[Event], type_names: list[str],
                    chunk_size: int) -> RawEvents:
        """The packed binary reader with psycopg 3, else the portable one."""
        connection = connections[self.alias]
        connection.ensure_connection()
        if psycopg is None or not isinstance(connection.connection, psycopg.Connection):
            return super().read_events(events, type_names, chunk_size)
        if not type_names:
            return no_events()
        return self._read_packed(events.using(self.alias).order_by(), type_names, chunk_size)

    def _read_packed(self, events: QuerySet[Event], type_names: list[str],
                     chunk_size: int) -> RawEvents:
        """Read the events a page of ``chunk_size`` primary keys at a time."""
        connection = connections[self.alias]
        # the key range of all events: two index lookups, whatever the filters
        bounds = Event.objects.using(self.alias).aggregate(low=Min("pk"), high=Max("pk"))
        if bounds["low"] is None:
            return no_events()
        code_of = {name: code for code, name in enumerate(type_names)}
        selected = events.values_list("event_type", "subject_id", "item_id", "value",
                                      "timestamp", "pk")
        # compiled once: only the key range changes from page to page
        sql, params = selected.query.get_compiler(using=self.alias).as_sql()
        sql = _PACK_EVENTS.format(events=sql)
        columns: list[list[np.ndarray]] = [[], [], [], [], []]
        # Django's cursors bind client-side, and those cannot return binary
        # values (bytea would come as hex text): a psycopg cursor on Django's connection.
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            for low in range(int(bounds["low"]), int(bounds["high"]) + 1, chunk_size):
                cursor.execute(sql, (*params, low, low + chunk_size), binary=True, prepare=False)
                for name, count, packed in sorted(cursor.fetchall()):
                    packed = packed or b""
                    if len(packed) != count * _PACKED_EVENT.itemsize:
                        # a NULL field drops its whole record from string_agg
                        raise ValueError(
                            f"Expected {count} packed events, got {len(packed)} bytes.")
                    records = np.frombuffer(packed, dtype=_PACKED_EVENT)
                    # native columns now, so the page's bytes can go
                    columns[0].append(records["subject"].astype(np.int64))
                    columns[1].append(records["item"].astype(np.int64))
                    columns[2].append(np.full(count, code_of[name], dtype=np.int16))
                    columns[3].append(records["value"].astype(np.float64))
                    # whole microseconds since 1970, divided once: datetime.timestamp()'s value
                    columns[4].append((records["time"].astype(np.int64) + _POSTGRES_EPOCH_US)
                                      / 1e6)
        if not columns[0]:
            return no_events()
        subjects, items, types, values, timestamps = (np.concatenate(c) for c in columns)
        return RawEvents(subjects=subjects, items=items, types=types,
                         type_names=list(type_names), values=values, timestamps=timestamps)
