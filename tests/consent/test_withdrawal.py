"""Withdrawal and ingestion of the same subject are serialised (real concurrent requests).

Runs on the real PostgreSQL and Redis only (``PERSONALIZE_TEST_SERVICES=1``):
SQLite serialises every writer anyway, and the race needs separate connections.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.test import Client, override_settings
from django.utils.crypto import get_random_string

from personalize.consent.rights import export_subject
from personalize.consent.service import grant_consent, has_consent
from personalize.identity import COOKIE_SALT
from personalize.models import Event, Item, Subject
from personalize.training.snapshot import database_snapshot
from tests.tracking.conftest import BROWSER_UA

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(os.environ.get("PERSONALIZE_TEST_SERVICES") != "1",
                       reason="needs PERSONALIZE_TEST_SERVICES=1 (real PostgreSQL and Redis)"),
    pytest.mark.django_db(transaction=True),
]

EVENTS = "/api/personalize/events/"
CONSENT = "/api/personalize/consent/"
MY_DATA = "/api/personalize/me/data/"
#: Ingestion threads posting the visitor's batches while the withdrawal runs.
SENDERS = 6
BATCH = 40


def browser_of(subject: Subject) -> Client:
    """A browser carrying the subject's signed visitor cookie and a CSRF cookie."""
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA)
    response = HttpResponse()
    response.set_signed_cookie("personalize_vid", subject.visitor_id, salt=COOKIE_SALT)
    client.cookies["personalize_vid"] = response.cookies["personalize_vid"].value
    client.csrf = get_random_string(32)  # a CSRF secret
    client.cookies["csrftoken"] = client.csrf
    return client


def batch() -> str:
    return json.dumps({"events": [
        {"event_id": str(uuid.uuid4()), "type": "view", "item": f"sku-{n % 5}"}
        for n in range(BATCH)
    ]})


def withdraw(client: Client):
    return client.post(CONSENT, {"purpose": "personalization", "granted": False},
                       content_type="application/json", headers={"X-CSRFToken": client.csrf})


def erase(client: Client):
    return client.delete(MY_DATA, headers={"X-CSRFToken": client.csrf})


@pytest.mark.parametrize(("action", "mode"), [
    (withdraw, "erase"), (withdraw, "anonymize"), (erase, "erase"),
], ids=["withdraw-erase", "withdraw-anonymize", "erasure"])
def test_events_sent_during_withdrawal_do_not_survive_it(action, mode):
    for n in range(5):
        Item.objects.create(external_id=f"sku-{n}", title=f"Item {n}")
    subject = Subject.objects.create(visitor_id="v-withdrawing")
    grant_consent(subject)
    withdrawn = threading.Event()
    statuses: list[int] = []
    errors: list[BaseException] = []

    def send() -> None:
        client = browser_of(subject)
        try:
            # Keep sending until well after the withdrawal's answer came back.
            deadline = None
            while deadline is None or time.monotonic() < deadline:
                response = client.post(EVENTS, batch(), content_type="application/json",
                                       headers={"X-CSRFToken": client.csrf})
                statuses.append(response.status_code)
                if withdrawn.is_set() and deadline is None:
                    deadline = time.monotonic() + 0.3
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)
        finally:
            connection.close()

    overrides = {**settings.PERSONALIZE, "ON_CONSENT_REVOKED": mode,
                 "RATE_LIMITS": {"subject": None, "ip": None}}
    with override_settings(PERSONALIZE=overrides):
        senders = [threading.Thread(target=send) for _ in range(SENDERS)]
        for thread in senders:
            thread.start()
        try:
            give_up = time.monotonic() + 30
            while Event.objects.filter(subject_id=subject.pk).count() < SENDERS * BATCH:
                assert time.monotonic() < give_up and not errors, (statuses, errors)
                time.sleep(0.01)  # the senders are under way
            response = action(browser_of(subject))
        finally:
            withdrawn.set()  # the senders stop 0.3 s from now
            for thread in senders:
                thread.join()

    assert not errors
    assert response.status_code == 200
    assert not has_consent(subject.pk)
    assert set(statuses) <= {200, 400}  # accepted before, refused (no consent) after
    assert statuses.count(400) >= SENDERS  # every sender was refused at least once
    assert Event.objects.filter(subject_id=subject.pk).count() == 0
    if action is withdraw:
        assert export_subject(subject)["events"] == []
    else:
        assert not Subject.objects.filter(pk=subject.pk).exists()
    dataset = database_snapshot()
    assert subject.pk not in set(dataset.subject_ids.tolist())
