"""Retention: the periodic purge of old events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from personalize.consent.service import grant_consent
from personalize.consent.tasks import purge_expired_events
from personalize.models import ConsentRecord, Event

pytestmark = pytest.mark.django_db


def personalize(**overrides):
    return override_settings(PERSONALIZE={**settings.PERSONALIZE, **overrides})


@pytest.fixture
def aged(subject, items):
    now = timezone.now()
    ages = {"ancient": 800, "just-expired": 731, "just-kept": 729, "fresh": 0}
    for name, days in ages.items():
        Event.objects.create(subject=subject, item=items[0], event_type="view",
                             timestamp=now - timedelta(days=days), context={"name": name})
    return subject


def remaining():
    return sorted(Event.objects.values_list("context__name", flat=True))


def test_events_older_than_retention_are_deleted(aged):
    grant_consent(aged)
    with personalize(RETENTION_DAYS=730):
        assert purge_expired_events() == 2
    assert remaining() == ["fresh", "just-kept"]
    assert ConsentRecord.objects.count() == 1, "the ledger is evidence and is kept"


def test_runs_as_a_celery_task(aged):
    with personalize(RETENTION_DAYS=30):
        assert purge_expired_events.delay().get() == 3
    assert remaining() == ["fresh"]


def test_none_keeps_everything(aged):
    with personalize(RETENTION_DAYS=None):
        assert purge_expired_events() == 0
    assert len(remaining()) == 4


def test_deletes_in_chunks(subject, items):
    old = timezone.now() - timedelta(days=1000)
    Event.objects.bulk_create([
        Event(subject=subject, item=items[0], event_type="view", timestamp=old)
        for _ in range(7)
    ])
    with personalize(RETENTION_DAYS=730, RETENTION_CHUNK_SIZE=3), \
            CaptureQueriesContext(connection) as queries:
        assert purge_expired_events() == 7
    deletes = [q for q in queries.captured_queries if q["sql"].upper().startswith("DELETE")]
    assert len(deletes) == 3, "7 rows in chunks of 3"
    assert not Event.objects.exists()


def test_nothing_to_purge_returns_zero(subject, items):
    Event.objects.create(subject=subject, item=items[0], event_type="view")
    assert purge_expired_events() == 0
    assert Event.objects.count() == 1


def test_task_name_matches_the_beat_entry():
    assert purge_expired_events.name == "personalize.consent.tasks.purge_expired_events"
    try:
        from personalize.training.schedule import beat_schedule
    except ImportError:
        pytest.skip("the beat schedule lives with the training work")
    entry = beat_schedule()["personalize-purge-expired-events"]
    assert entry["task"] == purge_expired_events.name
