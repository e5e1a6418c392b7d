"""The event stores: the same answers from the portable store and the database's own.

Every test runs on both passes of the suite: on SQLite (the portable store is the
database's store) and on PostgreSQL (its own store, compared with the portable one
on the same rows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import OperationalError, connection, transaction

from personalize.backends.database import EventRow, Store, store_for
from personalize.backends.postgresql import PostgreSQLStore
from personalize.models import Event, Item, Subject
from tests.database import database_url
from tests.testapp.settings import REPO_DIR, USE_SERVICES

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
TYPES = ["view", "purchase", "rating"]


@pytest.fixture
def people(db):
    return [Subject.objects.create() for _ in range(3)], [
        Item.objects.create(external_id=f"i{n}") for n in range(4)]


def rows(people, n: int, start: int = 0) -> list[EventRow]:
    subjects, items = people
    return [
        EventRow(index, str(uuid.UUID(int=start + index + 1)), subjects[index % 3].pk,
                 items[index % 4].pk, TYPES[index % 3],
                 4.5 if TYPES[index % 3] == "rating" else None, {"n": index},
                 T0 + timedelta(seconds=index, microseconds=index))
        for index in range(n)
    ]


def stores() -> list[Store]:
    """The database's own store, and the portable one where they differ."""
    own = store_for("default")
    return [own] if type(own) is Store else [own, Store("default")]


def test_the_store_follows_the_database_vendor():
    expected = PostgreSQLStore if connection.vendor == "postgresql" else Store
    assert type(store_for("default")) is expected


@pytest.mark.parametrize("store", stores(), ids=lambda store: type(store).__name__)
def test_insert_stores_new_ids_once(store, people):
    first = rows(people, 5)
    inserted = store.insert(first, "api")
    assert set(inserted) == {row.event_id for row in first}
    # a replay of two of them, with three new ones
    again = [*first[3:], *rows(people, 3, start=100)]
    inserted = store.insert(again, "api")
    assert set(inserted) == {row.event_id for row in again[2:]}
    assert Event.objects.count() == 8
    stored = Event.objects.get(event_id=first[2].event_id)
    assert (stored.event_type, stored.value, stored.context, stored.timestamp, stored.source) == (
        "rating", 4.5, {"n": 2}, first[2].timestamp, "api")
    assert all(pk is None or Event.objects.filter(pk=pk).exists() for pk in inserted.values())


@pytest.mark.parametrize("store", stores(), ids=lambda store: type(store).__name__)
def test_read_events_gives_the_columns_of_the_queryset(store, people):
    store.insert(rows(people, 12), "api")
    Event.objects.create(subject=people[0][0], item=None, event_type="search", timestamp=T0)
    events = Event.objects.filter(item__isnull=False, event_type__in=TYPES)
    expected = sorted(events.values_list("subject_id", "item_id", "event_type", "value",
                                         "timestamp"), key=lambda row: row[4])
    with store.consistent_read():
        raw = store.read_events(events, TYPES, chunk_size=5)
    order = np.argsort(raw.timestamps, kind="stable")
    assert raw.type_names == TYPES
    assert raw.subjects[order].tolist() == [row[0] for row in expected]
    assert raw.items[order].tolist() == [row[1] for row in expected]
    assert [TYPES[code] for code in raw.types[order]] == [row[2] for row in expected]
    values = raw.values[order]
    assert [None if np.isnan(v) else v for v in values.tolist()] == [row[3] for row in expected]
    # exact to the microsecond
    assert raw.timestamps[order].tolist() == [row[4].timestamp() for row in expected]


@pytest.mark.parametrize("store", stores(), ids=lambda store: type(store).__name__)
def test_read_events_of_nothing(store):
    assert len(store.read_events(Event.objects.all(), TYPES, 10)) == 0
    assert len(store.read_events(Event.objects.all(), [], 10)) == 0


def test_both_stores_read_the_same_snapshot(people):
    Store("default").insert(rows(people, 30), "api")
    events = Event.objects.filter(event_type__in=TYPES)
    answers = []
    for store in stores():
        raw = store.read_events(events, TYPES, chunk_size=7)
        order = np.lexsort((raw.items, raw.subjects, raw.timestamps))
        answers.append([getattr(raw, column)[order].tolist()
                        for column in ("subjects", "items", "types", "timestamps")])
    assert all(answer == answers[0] for answer in answers)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("store", stores(), ids=lambda store: type(store).__name__)
def test_a_consistent_read_is_one_transaction(store):
    with store.consistent_read():
        assert connection.in_atomic_block
    assert not connection.in_atomic_block
    with transaction.atomic(), store.consistent_read():  # inside a caller's transaction too
        assert connection.in_atomic_block


# --- a site whose PostgreSQL driver is psycopg2 ---------------------------------------


SNAPSHOT_WITHOUT_PSYCOPG3 = """
import json, sys
sys.modules["psycopg"] = None  # as on a site that installed psycopg2 only
import django
django.setup()
from django.db import connection
from personalize.training.snapshot import database_snapshot
dataset = database_snapshot(chunk_size=4)
print(json.dumps({
    "driver": connection.Database.__name__,
    "subjects": dataset.subject_ids.tolist(), "items": dataset.item_ids.tolist(),
    "interactions": dataset.interactions.toarray().tolist(),
    "timestamps": sorted(dataset.events.timestamp.tolist()),
}))
"""


@pytest.mark.services
@pytest.mark.skipif(not USE_SERVICES, reason="needs PERSONALIZE_TEST_SERVICES=1 (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_a_site_on_psycopg2_trains_through_the_portable_reader(people):
    pytest.importorskip("psycopg2")
    from personalize.training.snapshot import database_snapshot

    Store("default").insert(rows(people, 20), "api")
    here = database_snapshot(chunk_size=4)
    env = {**os.environ, "PERSONALIZE_TEST_SERVICES": "1", "DATABASE_URL": database_url(),
           "DJANGO_SETTINGS_MODULE": "tests.testapp.settings", "PYTHONPATH": str(REPO_DIR)}
    done = subprocess.run([sys.executable, "-c", SNAPSHOT_WITHOUT_PSYCOPG3], env=env,
                          cwd=REPO_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout.strip().splitlines()[-1])
    assert there["driver"] == "psycopg2"
    assert there["subjects"] == here.subject_ids.tolist()
    assert there["items"] == here.item_ids.tolist()
    assert there["interactions"] == here.interactions.toarray().tolist()
    assert there["timestamps"] == sorted(here.events.timestamp.tolist())


# --- the two reads of a request --------------------------------------------------------


@pytest.mark.parametrize("store", stores(), ids=lambda store: type(store).__name__)
def test_the_subject_of_a_user_or_a_visitor(store, django_user_model):
    user = django_user_model.objects.create_user("ann")
    signed_in = Subject.objects.create(user=user)
    visitor = Subject.objects.create(visitor_id="v-live")
    Subject.objects.create(visitor_id="v-merged", merged_into=signed_in)
    Subject.objects.create(visitor_id="v-signed-in", user=django_user_model.objects.create_user("b"))

    found = store.subject(user_id=user.pk)
    assert (found.pk, found.key, found.user_id) == (signed_in.pk, signed_in.key, user.pk)
    assert found.last_seen_at == signed_in.last_seen_at  # deferred, loaded on access
    assert store.subject(visitor_id="v-live").pk == visitor.pk
    # only a live anonymous subject answers to a visitor id
    assert store.subject(visitor_id="v-merged") is None
    assert store.subject(visitor_id="v-signed-in") is None
    assert store.subject(visitor_id="v-unknown") is None
    assert store.subject(user_id=10**9) is None


@pytest.mark.parametrize("store", stores(), ids=lambda store: type(store).__name__)
def test_latest_events_newest_first(store, people):
    subjects, items = people
    ann = subjects[0]
    same_time = T0 + timedelta(hours=1)
    made = [
        Event.objects.create(subject=ann, item=items[0], event_type="view", timestamp=T0),
        Event.objects.create(subject=ann, item=items[1], event_type="rating", value=3.5,
                             timestamp=same_time),
        Event.objects.create(subject=ann, item=items[2], event_type="purchase",
                             timestamp=same_time),  # a later id at the same time comes first
        Event.objects.create(subject=ann, item=items[3], event_type="impression",
                             timestamp=T0 + timedelta(hours=2)),
        Event.objects.create(subject=ann, item=None, event_type="view",
                             timestamp=T0 + timedelta(hours=3)),
        Event.objects.create(subject=subjects[1], item=items[0], event_type="view",
                             timestamp=T0 + timedelta(hours=4)),
    ]
    latest = store.latest_events(ann.pk, TYPES, limit=10)
    assert latest == [
        (items[2].pk, "purchase", None, same_time.timestamp()),
        (items[1].pk, "rating", 3.5, same_time.timestamp()),
        (items[0].pk, "view", None, T0.timestamp()),
    ]
    assert store.latest_events(ann.pk, TYPES, limit=2) == latest[:2]
    assert store.latest_events(ann.pk, ["view"], limit=10) == latest[2:]
    assert store.latest_events(ann.pk, [], limit=10) == []
    assert made  # the rows above are the whole of the subject's events


def test_both_stores_give_the_same_request_reads(people):
    Store("default").insert(rows(people, 40), "api")
    for subject in people[0]:
        answers = [store.latest_events(subject.pk, TYPES, 7) for store in stores()]
        assert all(answer == answers[0] for answer in answers)


# --- subject row locks -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("store", stores(), ids=lambda store: type(store).__name__)
def test_lock_subjects_needs_a_transaction_and_answers_who_exists(store):
    kept, gone = Subject.objects.create(), Subject.objects.create()
    gone_pk = gone.pk
    gone.delete()
    with pytest.raises(transaction.TransactionManagementError, match=r"transaction\.atomic"):
        store.lock_subjects([kept.pk], exclusive=False)
    for exclusive in (False, True):
        with transaction.atomic():
            assert store.lock_subjects([gone_pk, kept.pk, kept.pk], exclusive=exclusive) == {
                kept.pk}
            assert store.lock_subjects([], exclusive=exclusive) == set()


def lock_from_another_connection(pk: int, exclusive: bool) -> str:
    """Try the lock on a second connection without waiting: "locked" or "busy"."""
    outcome: list[str] = []

    def attempt() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '200ms'")
                try:
                    store_for("default").lock_subjects([pk], exclusive=exclusive)
                    outcome.append("locked")
                except OperationalError:
                    outcome.append("busy")
        finally:
            connection.close()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return outcome[0]


@pytest.mark.services
@pytest.mark.skipif(not USE_SERVICES, reason="needs PERSONALIZE_TEST_SERVICES=1 (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_event_writers_share_the_lock_that_withdrawal_takes_alone():
    subject = Subject.objects.create()
    store = store_for("default")
    with transaction.atomic():
        store.lock_subjects([subject.pk], exclusive=False)  # a writer of events
        assert lock_from_another_connection(subject.pk, exclusive=False) == "locked"
        assert lock_from_another_connection(subject.pk, exclusive=True) == "busy"
    with transaction.atomic():
        store.lock_subjects([subject.pk], exclusive=True)  # a withdrawal or erasure
        assert lock_from_another_connection(subject.pk, exclusive=False) == "busy"
        assert lock_from_another_connection(subject.pk, exclusive=True) == "busy"
    assert lock_from_another_connection(subject.pk, exclusive=True) == "locked"
