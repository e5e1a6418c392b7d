"""Batch ingestion: per-index results, idempotent replay, constant query count."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from personalize.backends.cache import CacheBatch
from personalize.consent.rights import erase_subject
from personalize.consent.service import grant_consent, revoke_consent
from personalize.models import Event, Item, Subject
from personalize.signals import event_recorded, items_changed
from personalize.tracking.ingest import (
    PayloadError,
    decode_payload,
    ingest_events,
    subjects_for_refs,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def subject():
    subject = Subject.objects.create()
    grant_consent(subject)
    return subject


def statuses(report):
    return [(r.status, r.field) for r in report.results]


def test_valid_events_stored_even_when_others_are_rejected(subject, items):
    report = ingest_events(
        [{"type": "view", "item": "sku-1"}, {"type": "teleport", "item": "sku-1"},
         {"type": "rating", "item": "sku-2", "value": 4}, {"type": "view", "item": "nope"}],
        subject=subject,
    )
    assert statuses(report) == [
        ("accepted", None), ("rejected", "type"), ("accepted", None), ("rejected", "item"),
    ]
    assert report.results[3].reason == "unknown item 'nope'"
    assert Event.objects.count() == 2
    stored_ids = {str(e) for e in Event.objects.values_list("event_id", flat=True)}
    assert {report.results[0].event_id, report.results[2].event_id} == stored_ids


def test_replayed_event_ids_are_duplicates_and_stored_once(subject, items):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [{"event_id": i, "type": "view", "item": "sku-1"} for i in ids]
    first = ingest_events(batch, subject=subject)
    assert [r.status for r in first.results] == ["accepted"] * 3
    fresh = {"event_id": str(uuid.uuid4()), "type": "click", "item": "sku-2"}
    replay = ingest_events([*batch, fresh], subject=subject)
    assert [r.status for r in replay.results] == ["duplicate"] * 3 + ["accepted"]
    assert [r.event_id for r in replay.results[:3]] == ids
    assert Event.objects.count() == 4


def test_duplicates_within_one_batch_are_stored_once(subject, items):
    uid = str(uuid.uuid4())
    report = ingest_events(
        [{"event_id": uid, "type": "view", "item": "sku-1"},
         {"event_id": uid, "type": "view", "item": "sku-1"},
         {"event_id": uid.upper(), "type": "view", "item": "sku-1"}],
        subject=subject,
    )
    assert [r.status for r in report.results] == ["accepted", "duplicate", "duplicate"]
    assert Event.objects.count() == 1


def test_no_consent_rejects_every_event(items):
    subject = Subject.objects.create()
    report = ingest_events([{"type": "view", "item": "sku-1"}, {"type": "x"}], subject=subject)
    assert statuses(report) == [("rejected", "consent"), ("rejected", "type")]
    assert Event.objects.count() == 0


def test_a_withdrawal_the_cache_does_not_show_yet_is_honoured(subject, items):
    """The cached answer may predate a withdrawal that just committed; the ledger decides."""
    other = Subject.objects.create()
    grant_consent(other)
    with mock.patch("personalize.tracking.ingest.personalization_allowed_many",
                    return_value={subject.pk: True, other.pk: True}):
        revoke_consent(subject)
        report = ingest_events(
            [{"type": "view", "item": "sku-1", "subject": subject.key},
             {"type": "view", "item": "sku-2", "subject": other.key}],
            allow_subject=True,
        )
    assert statuses(report) == [("rejected", "consent"), ("accepted", None)]
    assert list(Event.objects.values_list("subject_id", flat=True)) == [other.pk]


def test_a_subject_erased_meanwhile_gets_nothing_stored(subject, items):
    with mock.patch("personalize.tracking.ingest.personalization_allowed_many",
                    return_value={subject.pk: True}):
        report = ingest_events([{"type": "view", "item": "sku-1"}],
                               subject=Subject.objects.get(pk=subject.pk))
        assert statuses(report) == [("accepted", None)]
        erase_subject(subject)
        report = ingest_events([{"type": "view", "item": "sku-1"}], subject=subject)
    assert statuses(report) == [("rejected", "consent")]
    assert Event.objects.count() == 0


def test_queries_do_not_grow_with_the_batch(subject, items):
    def run(n):
        batch = [{"event_id": str(uuid.uuid4()), "type": "view", "item": f"sku-{1 + i % 5}"}
                 for i in range(n)]
        with CaptureQueriesContext(connection) as queries:
            report = ingest_events(batch, subject=subject)
        assert report.accepted == n
        inserts = [q for q in queries if q["sql"].startswith("INSERT")]
        # One INSERT statement, split only where the backend caps its parameters.
        fields = len(Event._meta.concrete_fields) - 1
        assert len(inserts) == len(range(0, n, connection.ops.bulk_batch_size(
            [None] * fields, [None] * n)))
        return len(queries) - len(inserts)

    run(1)  # consent cached from here on
    assert run(5) == run(400)
    # items; the subjects' row locks and their ledger; existing ids (+ savepoints);
    # no per-event query
    assert run(400) <= 8


def test_server_events_name_their_subjects(items):
    user = get_user_model().objects.create_user("ann")
    known = Subject.objects.create()
    merged = Subject.objects.create(merged_into=known)
    grant_consent(known)
    grant_consent(user)  # creates the user's subject
    report = ingest_events(
        [{"type": "view", "item": "sku-1", "subject": known.key},
         {"type": "view", "item": "sku-1", "subject": user.pk},
         {"type": "view", "item": "sku-1", "subject": merged.key},
         {"type": "view", "item": "sku-1", "subject": "0" * 32},
         {"type": "view", "item": "sku-1", "subject": 999999},
         {"type": "view", "item": "sku-1"}],
        allow_subject=True,
    )
    assert statuses(report) == [
        ("accepted", None), ("accepted", None), ("accepted", None),
        ("rejected", "subject"), ("rejected", "subject"), ("rejected", "subject"),
    ]
    assert Event.objects.filter(subject=known).count() == 2
    assert Event.objects.filter(subject__user=user).count() == 1


def test_user_ids_get_subjects_in_bulk():
    users = [get_user_model().objects.create_user(f"u{i}") for i in range(3)]
    found = subjects_for_refs({u.pk for u in users})
    assert {s.user_id for s in found.values()} == {u.pk for u in users}
    assert Subject.objects.count() == 3


def test_unknown_items_created_when_allowed(subject, settings, django_capture_on_commit_callbacks):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CREATE_UNKNOWN_ITEMS": True}
    changed = []
    items_changed.connect(lambda **kw: changed.append(kw), weak=False, dispatch_uid="t-items")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            report = ingest_events(
                [{"type": "view", "item": "n1"}, {"type": "view", "item": "n2"},
                 {"type": "view", "item": "n1"}], subject=subject)
    finally:
        items_changed.disconnect(dispatch_uid="t-items")
    assert report.accepted == 3
    assert set(Item.objects.values_list("external_id", flat=True)) == {"n1", "n2"}
    assert changed[0]["item_ids"] == set(Item.objects.values_list("pk", flat=True))


def test_signal_after_commit_names_subjects_items_and_count(
    subject, items, django_capture_on_commit_callbacks
):
    received = []
    event_recorded.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t-ing")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ingest_events([{"type": "view", "item": "sku-1"}, {"type": "search"},
                           {"type": "view", "item": "sku-2"}], subject=subject)
    finally:
        event_recorded.disconnect(dispatch_uid="t-ing")
    assert len(received) == 1
    assert isinstance(received[0].pop("cache_writes"), CacheBatch)
    assert received == [{
        "signal": event_recorded, "sender": Event, "subject_ids": {subject.pk},
        "item_ids": {items["sku-1"].pk, items["sku-2"].pk}, "count": 3,
    }]


def test_nothing_stored_means_no_signal(items, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        ingest_events([{"type": "view", "item": "sku-1"}], subject=None)
    assert callbacks == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Empty body"),
        (b"{", "Malformed JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[NaN]", "NaN is not valid JSON"),
        (b'{"type": Infinity}', "Infinity is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"1" * 5000, "Malformed JSON"),
        (b'"view"', "Body must be"),
        (b"[]", "No events"),
        (b'{"events": {}}', '"events" must be a list'),
        (b'{"events": [], "x": 1}', "Unknown envelope field(s): x"),
        (b"[" + b",".join([b"{}"] * 501) + b"]", "Too many events: 501"),
    ],
)
def test_unusable_bodies(body, message):
    with pytest.raises(PayloadError) as info:
        decode_payload(body)
    assert message in info.value.detail


def test_body_shapes_and_token():
    assert decode_payload(b'{"type": "view"}') == ([{"type": "view"}], None)
    assert decode_payload(b'[{"type": "view"}]') == ([{"type": "view"}], None)
    assert decode_payload(b'{"events": [{"type": "view"}], "csrfmiddlewaretoken": "t"}') == (
        [{"type": "view"}], "t")
    assert decode_payload(b'{"type": "view", "csrfmiddlewaretoken": "t"}') == (
        [{"type": "view"}], "t")
    assert decode_payload('\ufeff[{"type": "vïew"}]'.encode()) == ([{"type": "vïew"}], None)


def test_consent_is_read_once_per_batch_for_all_subjects(items):
    from unittest import mock

    subjects = [Subject.objects.create() for _ in range(3)]
    for s in subjects[:2]:
        grant_consent(s)
    batch = [{"type": "view", "item": "sku-1", "subject": s.key} for s in subjects * 2]
    with mock.patch("personalize.tracking.consent_gate.has_consent_many",
                    wraps=__import__("personalize.consent.service",
                                     fromlist=["x"]).has_consent_many) as spy:
        report = ingest_events(batch, allow_subject=True)
    assert spy.call_count == 1
    assert set(spy.call_args.args[0]) == {s.pk for s in subjects}
    assert [r.field for r in report.results] == [None, None, "consent"] * 2


def test_consent_failure_fails_closed(subject, items):
    from unittest import mock

    with mock.patch("personalize.tracking.consent_gate.has_consent_many",
                    side_effect=RuntimeError("ledger down")):
        report = ingest_events([{"type": "view", "item": "sku-1"}], subject=subject)
    assert report.results[0].field == "consent"
    assert Event.objects.count() == 0


def test_stored_fields_round_trip_exactly(subject, items):
    ts = "2024-02-29T23:59:58.123456+02:00"
    report = ingest_events([{"type": "rating", "item": "sku-4", "value": 4.5, "timestamp": ts,
                             "context": {"q": "Grüße ✓", "n": 3, "f": 0.25, "b": False}}],
                           subject=subject, source="browser")
    event = Event.objects.get(event_id=report.results[0].event_id)
    from datetime import datetime

    assert event.timestamp == datetime.fromisoformat(ts)
    assert (event.value, event.event_type, event.source) == (4.5, "rating", "browser")
    assert event.context == {"q": "Grüße ✓", "n": 3, "f": 0.25, "b": False}
    assert (event.subject_id, event.item_id) == (subject.pk, items["sku-4"].pk)
    assert event.received_at is not None
