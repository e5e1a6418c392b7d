"""static/personalize/track.js, run in Node against a fake DOM; its beacons posted for real."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from personalize.consent.service import grant_consent
from personalize.models import Event, Item, Subject

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent.parent / "personalize" / "static" / "personalize" / "track.js"
NODE = shutil.which("node")
#: The impression id of the harness's block (``data-personalize-impression``).
IMPRESSION = "5d2c7f4e-9b1a-4c8e-a0f3-6e2d1b9c8a70"

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run the script")


@pytest.fixture(scope="module")
def result():
    completed = subprocess.run(
        [NODE, str(HERE / "track_js_harness.js"), str(SCRIPT)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return json.loads(completed.stdout)


def test_nothing_happens_without_consent(result):
    assert result["denied"] == {"beacons": 0, "fetches": 0, "observed": 0}
    assert result["withdrawn"] == {"beacons": 0, "queuedAfter": False}


def test_impressions_once_per_block_and_clicks_flush(result):
    [beacon] = result["granted"]["beacons"]
    assert beacon["url"] == "/api/personalize/events/"
    assert beacon["type"] == "text/plain;charset=UTF-8"
    assert beacon["body"]["csrfmiddlewaretoken"] == "tok123"
    events = beacon["body"]["events"]
    assert [(e["type"], e["item"]) for e in events] == [
        ("impression", "sku-1"), ("impression", "sku-2"), ("impression", "sku-3"),
        ("click", "sku-2"),
    ]
    assert events[1]["context"] == {"placement": "home", "strategy": "ease", "position": 2,
                                    "impression": IMPRESSION}
    assert events[0]["context"]["strategy"] == "item_knn"  # the block's strategy
    # the click names the block it came from (its impression id) and the item's position
    assert events[3]["context"] == {"placement": "home", "strategy": "ease", "position": 2,
                                    "impression": IMPRESSION}
    assert len({e["event_id"] for e in events}) == 4
    assert result["granted"]["threshold"] == {"threshold": [0.5]}


def test_dwell_counts_visible_time_only(result):
    [beacon] = result["dwell"]["beacons"]
    [event] = beacon["body"]["events"]
    assert (event["type"], event["item"], event["value"]) == ("dwell", "sku-7", 42.5)


def test_fallback_and_batching(result):
    [call] = result["fallback"]["fetches"]
    assert call["keepalive"] is True and call["credentials"] == "same-origin"
    assert call["headers"] == {"Content-Type": "application/json", "X-CSRFToken": "tok123"}
    assert call["body"]["events"][0]["context"] == {"q": "lamp"}
    assert result["batches"] == {"fetched": [50, 50], "beaconed": [20]}
    assert result["noObserver"] == [["impression"] * 3]


def test_a_refused_or_lost_batch_is_sent_again_with_the_same_ids(result):
    retried = result["retried"]
    # the periodic send, then Retry-After: 7, then a growing delay (network error, 429)
    assert retried["delays"] == [5000, 7000, 10000, 20000]
    first, *again = retried["sent"]
    assert len(first) == 4 and all(batch == first for batch in again)  # same event ids
    assert retried["beacons"] == 0 and retried["pending"] == 0  # delivered: nothing left


def test_a_rejected_batch_and_a_withdrawn_one_are_not_sent_again(result):
    assert result["notRetried"] == {"after400": 0, "fetches400": 1, "withdrawnFetches": 0}


@pytest.mark.django_db
@pytest.mark.urls("tests.tracking.urls")
def test_the_endpoint_accepts_what_the_tracker_sends(result, browser):
    """The beacon bodies, as sendBeacon posts them (text/plain, token in the body)."""
    for n in (1, 2, 3, 7):
        Item.objects.create(external_id=f"sku-{n}")
    token = browser.get("/csrf/").content.decode()
    subject = Subject.objects.create(visitor_id="js-visitor")
    grant_consent(subject)
    from django.http import HttpResponse

    from personalize.identity import COOKIE_SALT

    response = HttpResponse()
    response.set_signed_cookie("personalize_vid", subject.visitor_id, salt=COOKIE_SALT)
    browser.cookies["personalize_vid"] = response.cookies["personalize_vid"].value
    bodies = [result["granted"]["beacons"][0]["body"], result["dwell"]["beacons"][0]["body"]]
    # The harness numbers event ids from 1 in each scenario: make the second unique.
    for event in bodies[1]["events"]:
        event["event_id"] = str(uuid.uuid4())
    for body in bodies:
        body = {**body, "csrfmiddlewaretoken": token}
        answer = browser.post("/api/personalize/events/", json.dumps(body),
                              content_type="text/plain;charset=UTF-8")
        assert answer.status_code == 200, answer.content
        assert answer.json()["rejected"] == 0
    assert sorted(Event.objects.values_list("event_type", flat=True)) == [
        "click", "dwell", "impression", "impression", "impression"]
    click = Event.objects.get(event_type="click")
    assert (click.context["impression"], click.context["position"]) == (IMPRESSION, 2)
