"""A subject's recent history as the strategies see it."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from personalize.conf import personalize_settings
from personalize.models import Event
from personalize.rawsql import fetchall
from personalize.sqltime import epoch_seconds, epoch_template
from personalize.strategies.base import History

DEFAULT_HISTORY_LIMIT = 500
#: Stands for the subject in the compiled query; replaced on every call.
_SUBJECT = -987_654_321


@dataclass(frozen=True)
class SubjectEvents:
    """A subject's history, with the event type of each entry and what the query covered.

    Attributes:
        history: what the strategies see.
        event_types: the event type of each history entry, in the same order.
        types: the event types the query read (those carrying a preference).
        complete: whether the query returned every item event of ``types``
            (fewer rows than its limit), so that the history stands for them all.
    """

    history: History
    event_types: list[str]
    types: tuple[str, ...]
    complete: bool

    def items_of(self, event_types: Sequence[str]) -> list[Any] | None:
        """The distinct items of the subject's events of ``event_types``, first seen first.

        Returns:
            ``None`` when the history cannot tell: a type it did not read, or
            events beyond its limit.
        """
        wanted = set(event_types)
        if not self.complete or not wanted <= set(self.types):
            return None
        pairs = zip(self.history.item_ids, self.event_types, strict=True)
        return list(dict.fromkeys(item for item, kind in pairs if kind in wanted))


def subject_history(subject_id: int, limit: int = DEFAULT_HISTORY_LIMIT) -> History:
    """The latest ``limit`` item events of a subject, oldest first, weighted per settings.

    Events whose type carries no preference (weight 0, such as impressions) are
    left out; explicit ratings go to ``History.ratings`` and count as weight 1.
    """
    return subject_events(subject_id, limit).history


def subject_events(subject_id: int, limit: int = DEFAULT_HISTORY_LIMIT) -> SubjectEvents:
    """:func:`subject_history`, with each entry's event type (serving reads both).

    Serving calls this on every computed block: where the database computes
    exact epoch seconds (:mod:`personalize.sqltime`: PostgreSQL, SQLite) the
    query is compiled once per database, type list and limit and returns the
    times as floats, instead of datetimes built and converted row by row;
    elsewhere it goes through the ORM.

    The query names the shorter of two type lists: the preference types it
    keeps, or the types without a preference it leaves out (by default 2
    against 8). On SQLite each listed value costs the statement, which is
    prepared anew on each request's connection. Leaving types out also reads
    events of a type no longer configured; they are dropped here, and should
    they have taken the place of older events under the limit, the subject is
    read again by the preference types.
    """
    weights = personalize_settings.event_weights
    preference_types = tuple(name for name, w in weights.items() if w is None or w != 0)
    no_preference = tuple(name for name, w in weights.items() if w is not None and w == 0)
    if not preference_types:
        rows: list[tuple[Any, ...]] = []
    elif len(no_preference) < len(preference_types):
        rows = _rows(subject_id, no_preference, True, limit)
        configured = [row for row in rows if row[1] in weights]
        if len(configured) < len(rows):
            rows = (configured if len(rows) < limit
                    else _rows(subject_id, preference_types, False, limit))
    else:
        rows = _rows(subject_id, preference_types, False, limit)
    # fewer rows than the limit: every item event of the types was read
    read_all = len(rows) < limit
    rows.reverse()
    ratings = {
        item_id: float(value)
        for item_id, event_type, value, _ in rows
        if weights.get(event_type) is None and value is not None
    }
    history = History(
        item_ids=[row[0] for row in rows],
        weights=[_weight(weights.get(row[1])) for row in rows],
        timestamps=[float(row[3]) for row in rows],
        ratings=ratings,
        subject_id=subject_id,
    )
    return SubjectEvents(history, [row[1] for row in rows], preference_types,
                         complete=read_all)


def _rows(subject_id: int, types: tuple[str, ...], leave_out: bool, limit: int
          ) -> list[tuple[Any, ...]]:
    """``(item, type, value, epoch seconds)`` of the latest item events, newest first.

    Of the event types ``types``, or of any other type when ``leave_out``.
    """
    alias = Event.objects.db  # the router's read database
    template = epoch_template(alias)
    if template is None:
        return [
            (item_id, event_type, value, moment.timestamp())
            for item_id, event_type, value, moment in _latest(subject_id, types, leave_out, limit)
        ]
    sql, compiled_params, position = _compiled(alias, template, types, leave_out, limit)
    params = list(compiled_params)
    params[position] = subject_id
    return fetchall(alias, sql, params)


def _latest(subject_id: int, types: tuple[str, ...], leave_out: bool, limit: int,
            moment: Any = "timestamp") -> Any:
    """``(item, type, value, moment)`` of the item events (see :func:`_rows`), newest first."""
    events = Event.objects.filter(subject_id=subject_id, item__isnull=False)
    if leave_out:
        events = events.exclude(event_type__in=types) if types else events
    else:
        events = events.filter(event_type__in=types)
    return (
        events.order_by("-timestamp", "-id")
        .values_list("item_id", "event_type", "value", moment)[:limit]
    )


@functools.lru_cache(maxsize=64)
def _compiled(alias: str, template: str, types: tuple[str, ...], leave_out: bool, limit: int
              ) -> tuple[str, tuple[Any, ...], int]:
    """``(sql, params, subject position)`` of the history query on ``alias``.

    ``template`` (:func:`epoch_template` of ``alias``) keys the cache, so that
    a time zone setting that changes the expression compiles the query anew.
    """
    query = _latest(_SUBJECT, types, leave_out, limit, epoch_seconds(alias)).query
    sql, params = query.get_compiler(using=alias).as_sql()
    return sql, tuple(params), list(params).index(_SUBJECT)


def _weight(weight: float | None) -> float:
    # Explicit ratings (weight None) count as one interaction.
    return 1.0 if weight is None else float(weight)
