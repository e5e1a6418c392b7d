"""Concurrent ingestion on PostgreSQL: batches that share event ids, in any order.

Real concurrent requests, each thread on its own database connection, so the
row locks of concurrent transactions meet as they do under a WSGI server.
Runs on the real PostgreSQL and Redis only (``PERSONALIZE_TEST_SERVICES=1``).
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import uuid
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client

from personalize import signals
from personalize.models import Event, Item, Subject
from personalize.training.receivers import connect_training_signals

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(os.environ.get("PERSONALIZE_TEST_SERVICES") != "1",
                       reason="needs PERSONALIZE_TEST_SERVICES=1 (real PostgreSQL and Redis)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.tracking.urls"),
]

URL = "/api/personalize/events/"
#: Concurrent batches per round, and rounds.
BATCHES, ROUNDS = 12, 3
#: Events per batch (MAX_BATCH_SIZE), subjects they name, unknown items they create.
EVENTS, SUBJECTS, NEW_ITEMS = 500, 20, 300


@pytest.fixture
def no_embedding_tasks():
    """Created items are not queued for embedding while the batches run.

    The embedding task would run eagerly inside a request thread, and Celery's
    eager mode keeps a process-wide flag that tasks in concurrent threads leave
    set, which later breaks ``AsyncResult.get()`` in the real-worker tests.
    """
    signals.items_changed.disconnect(dispatch_uid="personalize.training.embed")
    yield
    connect_training_signals()


@pytest.fixture
def server(settings, no_embedding_tasks):
    settings.PERSONALIZE = {
        **settings.PERSONALIZE, "CONSENT_MODE": "opt-out", "CREATE_UNKNOWN_ITEMS": True,
        "SERVER_AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
    }
    user = get_user_model().objects.create_user("ingest", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    return "Basic " + base64.b64encode(b"ingest:pw").decode()


def post_concurrently(bodies: list[str], authorization: str) -> list[tuple[int, dict]]:
    """POST every body at once, from one thread (and database connection) each."""
    answers: list[tuple[int, dict]] = []
    start = threading.Barrier(len(bodies))

    def send(body: str) -> None:
        try:
            start.wait()
            response = Client().post(URL, body, content_type="application/json",
                                     HTTP_AUTHORIZATION=authorization)
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_batches_sharing_ids_in_different_orders_all_succeed(server, round_):
    subjects = [Subject.objects.create(visitor_id=f"v-{round_}-{n}") for n in range(SUBJECTS)]
    events = [
        {"event_id": str(uuid.uuid4()), "type": "view", "item": f"new-{n % NEW_ITEMS}",
         "subject": subjects[n % SUBJECTS].key}
        for n in range(EVENTS)
    ]
    bodies = []
    for seed in range(BATCHES):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        bodies.append(json.dumps({"events": shuffled}))

    answers = post_concurrently(bodies, server)

    assert [status for status, _ in answers] == [200] * BATCHES, [
        body.get("detail") for status, body in answers if status != 200]
    # Every event was accepted by exactly one batch and reported as a duplicate by the others.
    outcome = Counter((r["event_id"], r["status"]) for _, body in answers for r in body["results"])
    for event in events:
        assert outcome[event["event_id"], "accepted"] == 1
        assert outcome[event["event_id"], "duplicate"] == BATCHES - 1
    assert Event.objects.count() == EVENTS
    assert Item.objects.filter(external_id__startswith="new-").count() == NEW_ITEMS
    per_subject = Counter(Event.objects.values_list("subject_id", flat=True))
    assert per_subject == {s.pk: EVENTS // SUBJECTS for s in subjects}
