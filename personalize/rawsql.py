"""Read queries that serving runs on every computed block, with little per-query overhead.

The subject's history and the items a placement excludes for the subject are
two small indexed reads per computed block, compiled to SQL once. On SQLite,
Django's cursor then adds about as much again as the query itself costs: a
cursor wrapper per query and a regular expression that rewrites every ``%s``
of the (long) SQL into ``?`` on each execution. :func:`fetchall` rewrites the
SQL once and runs it on the DB-API connection, whenever nothing is watching
Django's cursors: with ``DEBUG`` (or a test's query capture) logging queries,
or an ``execute_wrapper`` installed (query counters, debug toolbars), the query
goes through Django's cursor as any other, so it is seen and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.db import connections


def fetchall(alias: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (``%s`` placeholders, as for a Django cursor) on ``alias``."""
    connection = connections[alias]
    if (connection.vendor != "sqlite" or connection.queries_logged
            or connection.execute_wrappers):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    # What Django's cursor checks before a query, minus the wrapping.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        return connection.connection.execute(_qmark(sql), params).fetchall()


@lru_cache(maxsize=64)
def _qmark(sql: str) -> str:
    """``sql`` with SQLite's placeholders, as Django's SQLite cursor rewrites it."""
    from django.db.backends.sqlite3.base import FORMAT_QMARK_REGEX

    return FORMAT_QMARK_REGEX.sub("?", sql).replace("%%", "%")
