"""A subject's recent history as the strategies see it."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import F, FloatField, Func

from personalize.conf import personalize_settings
from personalize.models import Event
from personalize.rawsql import fetchall
from personalize.strategies.base import History

DEFAULT_HISTORY_LIMIT = 500
#: Stands for the subject in the compiled query; replaced on every call.
_SUBJECT = -987_654_321


def subject_history(subject_id: int, limit: int = DEFAULT_HISTORY_LIMIT) -> History:
    """The latest ``limit`` item events of a subject, oldest first, weighted per settings.

    Events whose type carries no preference (weight 0, such as impressions) are
    left out; explicit ratings go to ``History.ratings`` and count as weight 1.
    Serving calls this on every computed block: on PostgreSQL and SQLite the
    query is compiled once per database, type list and limit and returns the
    times as epoch seconds, exact to the microsecond (``date_part`` on
    PostgreSQL, integer microseconds from the stored text on SQLite), instead of
    datetimes that would be built and converted row by row; elsewhere it goes
    through the ORM.
    """
    weights = personalize_settings.event_weights
    preference_types = tuple(name for name, w in weights.items() if w is None or w != 0)
    alias = Event.objects.db  # the router's read database
    template = _epoch_template(alias)
    if template is not None:
        sql, compiled_params, position = _compiled(alias, template, preference_types, limit)
        params = list(compiled_params)
        params[position] = subject_id
        rows = fetchall(alias, sql, params)
    else:
        rows = [
            (item_id, event_type, value, moment.timestamp())
            for item_id, event_type, value, moment in _latest(subject_id, preference_types, limit)
        ]
    rows.reverse()
    ratings = {
        item_id: float(value)
        for item_id, event_type, value, _ in rows
        if weights.get(event_type) is None and value is not None
    }
    return History(
        item_ids=[row[0] for row in rows],
        weights=[_weight(weights.get(row[1])) for row in rows],
        timestamps=[float(row[3]) for row in rows],
        ratings=ratings,
        subject_id=subject_id,
    )


def _latest(subject_id: int, types: tuple[str, ...], limit: int, moment: Any = "timestamp"
            ) -> Any:
    """``(item, type, value, moment)`` of the item events of ``types``, newest first."""
    return (
        Event.objects.filter(subject_id=subject_id, item__isnull=False, event_type__in=types)
        .order_by("-timestamp", "-id")
        .values_list("item_id", "event_type", "value", moment)[:limit]
    )


#: SQLite stores a datetime as UTC text, ``YYYY-MM-DD HH:MM:SS[.ffffff]``: the
#: whole seconds of the first 19 characters (``strftime('%s')`` of the full text
#: rounds to milliseconds first, so .9996 would count as the next second) plus
#: the fraction's digits padded to six, as integer microseconds, divided once:
#: one correctly rounded division, as ``datetime.timestamp()`` does
#: (``julianday`` would be off by microseconds).
#: (``%`` is doubled twice: once for the template, once for the query's own
#: ``%s`` placeholders.)
_SQLITE_EPOCH = (
    "((CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER) * 1000000"
    " + CAST(substr(%(expressions)s || '000000', 21, 6) AS INTEGER)) / 1000000.0)"
)


def _epoch_template(alias: str) -> str | None:
    """The exact epoch-seconds expression of ``alias``'s backend, if it has one.

    Read per call (a ``TIME_ZONE`` / ``USE_TZ`` change picks another query).
    """
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return "date_part('epoch', %(expressions)s)"
    if (connection.vendor == "sqlite" and settings.USE_TZ
            and connection.timezone_name == "UTC"):
        # stored as naive UTC text only with USE_TZ and no DATABASES TIME_ZONE
        return _SQLITE_EPOCH
    return None


@functools.lru_cache(maxsize=64)
def _compiled(alias: str, template: str, types: tuple[str, ...], limit: int
              ) -> tuple[str, tuple[Any, ...], int]:
    """``(sql, params, subject position)`` of the history query on ``alias``.

    ``template`` is the backend's epoch expression (:func:`_epoch_template`);
    where there is none the caller runs the queryset and converts the datetimes.
    """
    epoch = Func(F("timestamp"), template=template, output_field=FloatField())
    query = _latest(_SUBJECT, types, limit, epoch).query
    sql, params = query.get_compiler(using=alias).as_sql()
    return sql, tuple(params), list(params).index(_SUBJECT)


def _weight(weight: float | None) -> float:
    # Explicit ratings (weight None) count as one interaction.
    return 1.0 if weight is None else float(weight)
