"""rawsql.fetchall: Django's answers and Django's errors, without Django's cursor when unwatched."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from personalize import rawsql

pytestmark = pytest.mark.django_db

SQL = "SELECT %s + 1, '%%s literal', %s"


def test_same_rows_as_a_django_cursor():
    with connection.cursor() as cursor:
        cursor.execute(SQL, [41, "x"])
        expected = cursor.fetchall()
    assert rawsql.fetchall("default", SQL, [41, "x"]) == expected == [(42, "%s literal", "x")]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the direct path is SQLite's")
def test_on_sqlite_unwatched_queries_skip_django_cursor(monkeypatch):
    made = []
    backend = type(connections["default"])
    real = backend.create_cursor
    assert not connections["default"].queries_logged
    monkeypatch.setattr(backend, "create_cursor",
                        lambda self, name=None: made.append(name) or real(self, name))
    assert rawsql.fetchall("default", SQL, [1, "y"]) == [(2, "%s literal", "y")]
    assert made == []


def test_captured_queries_still_see_it():
    with CaptureQueriesContext(connection) as captured:
        rawsql.fetchall("default", SQL, [1, "y"])
    assert len(captured) == 1
    assert "literal" in captured[0]["sql"]


def test_execute_wrappers_still_see_it():
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        assert rawsql.fetchall("default", SQL, [2, "z"])[0][0] == 3
    assert len(seen) == 1


def test_database_errors_are_djangos():
    with pytest.raises(DatabaseError):
        rawsql.fetchall("default", "SELECT * FROM no_such_table_at_all WHERE 1 = %s", [1])


def test_a_broken_transaction_refuses_the_query():
    with transaction.atomic():
        with pytest.raises(DatabaseError), transaction.atomic(savepoint=False):
            rawsql.fetchall("default", "SELECT * FROM no_such_table_at_all", [])
        with pytest.raises(TransactionManagementError):
            rawsql.fetchall("default", SQL, [1, "y"])
