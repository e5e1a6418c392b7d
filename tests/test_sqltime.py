"""sqltime: event times as epoch seconds, computed by the database, to the microsecond."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connections

from personalize.models import Event, Item, Subject
from personalize.sqltime import epoch_seconds, epoch_template

pytestmark = pytest.mark.django_db

MOMENTS = [
    datetime(2024, 5, 1, 9, 30, 59, 999_600, tzinfo=UTC),  # strftime('%s') would round up
    datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC),  # stored without a fraction
    datetime(2024, 5, 1, 9, 30, 0, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),  # before the epoch
    datetime(2100, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC),
]


def test_the_database_computes_every_microsecond():
    subject = Subject.objects.create()
    item = Item.objects.create(external_id="sku-time")
    Event.objects.bulk_create([Event(subject=subject, item=item, event_type="view",
                                     timestamp=moment) for moment in MOMENTS])
    alias = Event.objects.db
    assert epoch_template(alias) is not None
    query = (Event.objects.filter(subject=subject).order_by("id")
             .annotate(epoch=epoch_seconds(alias)).values_list("epoch", flat=True))
    # the compiled SQL on a plain cursor, as serving and the snapshot run it
    sql, params = query.query.get_compiler(using=alias).as_sql()
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        computed = [row[0] for row in cursor.fetchall()]
    assert computed == [moment.timestamp() for moment in MOMENTS]


def test_naive_sqlite_times_have_no_expression(settings):
    if connections["default"].vendor != "sqlite":
        pytest.skip("SQLite stores naive local times only without USE_TZ")
    settings.USE_TZ = False
    assert epoch_template("default") is None
    assert epoch_seconds("default") is None
