"""POST /api/personalize/events/: browsers, servers, limits, and a fuzzer."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from personalize.api.events import server_authentication_classes
from personalize.consent.service import grant_consent, revoke_consent
from personalize.models import Event, Subject
from personalize.models.events import EventSource
from tests.tracking.conftest import BOT_UA, BROWSER_UA, browser, items, opt_out  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.tracking.urls")]

URL = "/api/personalize/events/"
BASIC = ["rest_framework.authentication.BasicAuthentication"]


def csrf_token(client: Client) -> str:
    return client.get("/csrf/").content.decode()


def post(client: Client, payload, token: str | None = None, **extra):
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    headers = {"HTTP_X_CSRFTOKEN": token} if token else {}
    return client.post(URL, body, content_type=extra.pop("content_type", "application/json"),
                       **headers, **extra)


@pytest.fixture
def consenting(browser):  # noqa: F811
    """A browser whose visitor granted personalization consent, and its CSRF token."""
    token = csrf_token(browser)
    # The consent endpoint would do this; here the subject is created and granted directly.
    subject = Subject.objects.create(visitor_id="v-consenting")
    grant_consent(subject)
    from django.http import HttpResponse

    from personalize.identity import COOKIE_SALT

    response = HttpResponse()
    response.set_signed_cookie("personalize_vid", subject.visitor_id, salt=COOKIE_SALT)
    browser.cookies["personalize_vid"] = response.cookies["personalize_vid"].value
    return browser, token, subject


@pytest.fixture
def server_user(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "SERVER_AUTHENTICATION_CLASSES": BASIC}
    user = get_user_model().objects.create_user("ingest", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="add_event"))
    return user


def basic_auth(username="ingest", password="pw") -> dict[str, str]:
    import base64

    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}"}


# --- browsers -----------------------------------------------------------------


def test_single_event_batch_and_list(consenting, items):  # noqa: F811
    client, token, subject = consenting
    one = post(client, {"type": "view", "item": "sku-1"}, token)
    assert one.status_code == 200
    assert one.json()["accepted"] == 1
    batch = post(client, {"events": [{"type": "view", "item": "sku-2"},
                                     {"type": "click", "item": "sku-2"}]}, token)
    assert batch.json()["accepted"] == 2
    listed = post(client, [{"type": "view", "item": "sku-3"}], token)
    assert listed.json()["results"][0]["status"] == "accepted"
    assert Event.objects.filter(subject=subject, source=EventSource.BROWSER).count() == 4


def test_response_reports_each_index(consenting, items):  # noqa: F811
    client, token, _ = consenting
    uid = str(uuid.uuid4())
    response = post(client, {"events": [
        {"event_id": uid, "type": "view", "item": "sku-1"},
        {"type": "rating", "item": "sku-1", "value": 11},
        {"event_id": uid, "type": "view", "item": "sku-1"},
    ]}, token)
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (1, 1, 1)
    assert body["results"] == [
        {"index": 0, "status": "accepted", "event_id": uid},
        {"index": 1, "status": "rejected", "field": "value",
         "reason": "must be between 0.5 and 5"},
        {"index": 2, "status": "duplicate", "event_id": uid},
    ]


def test_idempotent_replay(consenting, items):  # noqa: F811
    client, token, _ = consenting
    batch = {"events": [{"event_id": str(uuid.uuid4()), "type": "view", "item": "sku-1"}
                        for _ in range(5)]}
    assert post(client, batch, token).json()["accepted"] == 5
    replay = post(client, batch, token)
    assert replay.status_code == 200
    assert replay.json()["duplicate"] == 5
    assert Event.objects.count() == 5


def test_all_rejected_is_400_with_reasons(consenting, items):  # noqa: F811
    client, token, _ = consenting
    response = post(client, [{"type": "nope", "item": "sku-1"}], token)
    assert response.status_code == 400
    assert response.json()["results"][0]["reason"] == "unknown event type 'nope'"


def test_a_malformed_impression_id_is_a_400_naming_the_field(consenting, items):  # noqa: F811
    client, token, _ = consenting
    response = post(client, {"type": "click", "item": "sku-1",
                             "context": {"impression": "block-7", "position": 2}}, token)
    assert response.status_code == 400
    assert response.json()["results"][0] == {
        "index": 0, "status": "rejected", "field": "context.impression",
        "reason": "must be the impression id of a block (a UUID)"}
    impression = str(uuid.uuid4())
    response = post(client, {"type": "click", "item": "sku-1",
                             "context": {"impression": impression.upper(), "position": 2}}, token)
    assert response.status_code == 200
    assert Event.objects.get().context == {"impression": impression, "position": 2}


def test_browser_may_not_name_a_subject(consenting, items):  # noqa: F811
    client, token, _ = consenting
    other = Subject.objects.create()
    grant_consent(other)
    response = post(client, {"type": "view", "item": "sku-1", "subject": other.key}, token)
    assert response.status_code == 400
    assert response.json()["results"][0]["field"] == "subject"
    assert Event.objects.count() == 0


def test_csrf_is_required_for_anonymous_visitors(consenting, items):  # noqa: F811
    client, _, _ = consenting
    response = post(client, {"type": "view", "item": "sku-1"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Event.objects.count() == 0


def test_csrf_token_in_the_body_for_send_beacon(consenting, items):  # noqa: F811
    client, token, _ = consenting
    payload = {"csrfmiddlewaretoken": token, "events": [{"type": "view", "item": "sku-1"}]}
    response = post(client, payload, content_type="text/plain;charset=UTF-8")
    assert response.status_code == 200
    assert Event.objects.count() == 1
    wrong = post(client, {**payload, "csrfmiddlewaretoken": "x" * 64},
                 content_type="text/plain;charset=UTF-8")
    assert wrong.status_code == 403


def test_csrf_is_required_for_signed_in_users(browser, items):  # noqa: F811
    user = get_user_model().objects.create_user("ann", password="pw")
    grant_consent(user)
    browser.force_login(user)
    assert post(browser, {"type": "view", "item": "sku-1"}).status_code == 403
    token = csrf_token(browser)
    assert post(browser, {"type": "view", "item": "sku-1"}, token).status_code == 200
    assert Event.objects.get().subject.user == user


def test_without_consent_nothing_is_stored_and_response_says_so(browser, items):  # noqa: F811
    token = csrf_token(browser)
    response = post(browser, {"events": [{"type": "view", "item": "sku-1"},
                                         {"type": "view", "item": "sku-2"}]}, token)
    assert response.status_code == 400
    assert [(r["status"], r["field"]) for r in response.json()["results"]] == [
        ("rejected", "consent"), ("rejected", "consent")]
    assert Event.objects.count() == 0
    assert Subject.objects.count() == 0  # not even a subject (opt-in)
    assert "personalize_vid" not in response.cookies


def test_revoked_consent(consenting, items):  # noqa: F811
    client, token, subject = consenting
    revoke_consent(subject)
    response = post(client, {"type": "view", "item": "sku-1"}, token)
    assert response.json()["results"][0]["field"] == "consent"
    assert Event.objects.count() == 0


def test_opt_out_creates_subject_and_cookie(browser, items, opt_out):  # noqa: F811
    token = csrf_token(browser)
    response = post(browser, {"type": "view", "item": "sku-1"}, token)
    assert response.status_code == 200
    assert "personalize_vid" in response.cookies
    assert Event.objects.get().subject == Subject.objects.get()


@pytest.mark.parametrize("header", ["HTTP_SEC_GPC", "HTTP_DNT"])
def test_gpc_and_dnt_are_withdrawal(consenting, items, header):  # noqa: F811
    client, token, _ = consenting
    response = post(client, {"type": "view", "item": "sku-1"}, token, **{header: "1"})
    assert response.json()["results"][0]["field"] == "consent"
    assert Event.objects.count() == 0


def test_bots_are_not_recorded(consenting, items):  # noqa: F811
    client, token, _ = consenting
    response = post(client, {"type": "view", "item": "sku-1"}, token, HTTP_USER_AGENT=BOT_UA)
    assert response.status_code == 400
    assert response.json()["results"][0] == {
        "index": 0, "status": "rejected", "field": "user_agent",
        "reason": "crawler and monitor traffic is not recorded"}
    assert Event.objects.count() == 0


def test_ip_rate_limit_answers_429_with_retry_after(consenting, items, settings):  # noqa: F811
    client, token, _ = consenting
    settings.PERSONALIZE = {**settings.PERSONALIZE, "RATE_LIMITS": {"ip": "3/minute"}}
    assert post(client, [{"type": "view", "item": "sku-1"}] * 3, token).status_code == 200
    response = post(client, {"type": "view", "item": "sku-1"}, token)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "ip" in response.json()["detail"]
    assert Event.objects.count() == 3


def test_subject_rate_limit(consenting, items, settings):  # noqa: F811
    client, token, _ = consenting
    settings.PERSONALIZE = {**settings.PERSONALIZE,
                            "RATE_LIMITS": {"subject": "2/hour", "ip": None}}
    assert post(client, [{"type": "view", "item": "sku-1"}] * 2, token).status_code == 200
    response = post(client, {"type": "view", "item": "sku-1"}, token)
    assert response.status_code == 429
    assert int(response["Retry-After"]) <= 3600
    assert "subject" in response.json()["detail"]


def test_client_ip_header_setting(consenting, items, settings):  # noqa: F811
    client, token, _ = consenting
    settings.PERSONALIZE = {**settings.PERSONALIZE, "RATE_LIMITS": {"ip": "1/minute"},
                            "CLIENT_IP_META_KEY": "HTTP_X_FORWARDED_FOR"}
    ok = post(client, {"type": "view", "item": "sku-1"}, token,
              HTTP_X_FORWARDED_FOR="10.0.0.1, 10.9.9.9")
    other = post(client, {"type": "view", "item": "sku-1"}, token,
                 HTTP_X_FORWARDED_FOR="10.0.0.2")
    same = post(client, {"type": "view", "item": "sku-1"}, token,
                HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert (ok.status_code, other.status_code, same.status_code) == (200, 200, 429)


# --- bodies --------------------------------------------------------------------


def test_oversized_body_is_413(consenting, items, settings):  # noqa: F811
    client, token, _ = consenting
    settings.PERSONALIZE = {**settings.PERSONALIZE, "MAX_BODY_BYTES": 100}
    response = post(client, {"type": "view", "item": "sku-1", "context": {"x": "y" * 200}}, token)
    assert response.status_code == 413
    assert "100 bytes" in response.json()["detail"]


def test_body_over_djangos_own_limit_is_413(consenting, settings):
    client, token, _ = consenting
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50
    settings.PERSONALIZE = {**settings.PERSONALIZE, "MAX_BODY_BYTES": 10_000}
    response = post(client, {"type": "view", "item": "x" * 100}, token)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "Malformed JSON"),
        (b"", 400, "Empty body"),
        (b"[]", 400, "No events"),
        (b"42", 400, "Body must be"),
        (b'{"events": "x"}', 400, "must be a list"),
    ],
)
def test_malformed_bodies_are_400_with_reason(consenting, body, status, fragment):
    client, token, _ = consenting
    response = post(client, body, token)
    assert response.status_code == status
    assert fragment in response.json()["detail"]


def test_batch_over_max_is_400(consenting, items, settings):  # noqa: F811
    client, token, _ = consenting
    settings.PERSONALIZE = {**settings.PERSONALIZE, "MAX_BATCH_SIZE": 2}
    response = post(client, [{"type": "view", "item": "sku-1"}] * 3, token)
    assert response.status_code == 400
    assert "at most 2" in response.json()["detail"]


def test_form_bodies_are_415(consenting):
    client, token, _ = consenting
    response = client.post(URL, {"type": "view"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 415


def test_get_is_not_allowed(consenting):
    client, _, _ = consenting
    assert client.get(URL).status_code == 405


# --- servers ---------------------------------------------------------------------


def test_server_to_server_names_subjects(server_user, items, client):  # noqa: F811
    user = get_user_model().objects.create_user("shopper")
    grant_consent(user)
    response = client.post(URL, json.dumps({"events": [
        {"type": "purchase", "item": "sku-1", "subject": user.pk},
        {"type": "purchase", "item": "sku-2"},
    ]}), content_type="application/json", HTTP_USER_AGENT="python-requests/2.32", **basic_auth())
    assert response.status_code == 200  # no CSRF, no bot filter for servers
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]
    assert response.json()["results"][1]["field"] == "subject"
    event = Event.objects.get()
    assert (event.subject.user, event.source) == (user, EventSource.API)


def test_server_consent_is_still_required(server_user, items, client):  # noqa: F811
    subject = Subject.objects.create()
    response = client.post(URL, json.dumps({"type": "view", "item": "sku-1",
                                            "subject": subject.key}),
                           content_type="application/json", **basic_auth())
    assert response.json()["results"][0]["field"] == "consent"


def test_server_needs_the_permission(server_user, items, client):  # noqa: F811
    get_user_model().objects.create_user("nobody", password="pw")
    response = client.post(URL, json.dumps({"type": "view", "item": "sku-1", "subject": 1}),
                           content_type="application/json", **basic_auth("nobody"))
    assert response.status_code == 403
    assert "personalize.add_event" in response.json()["detail"]


def test_bad_server_credentials_are_401(server_user, client):
    response = client.post(URL, "{}", content_type="application/json",
                           **basic_auth("ingest", "wrong"))
    assert response.status_code == 401


def test_token_authentication_is_the_default_only_with_authtoken():
    from unittest import mock

    from django.apps import apps
    from rest_framework.authentication import TokenAuthentication

    assert server_authentication_classes() == []
    with mock.patch.object(apps, "is_installed", return_value=True):
        assert server_authentication_classes() == [TokenAuthentication]


@pytest.mark.urls("tests.testapp.urls")
def test_real_url_map_mounts_the_view():
    from django.urls import resolve, reverse

    from personalize.api.events import EventIngestView

    assert reverse("personalize:events") == URL
    assert resolve(URL).func.view_class is EventIngestView


# --- fuzzing -------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=300)
    | st.sampled_from(["view", "rating", "dwell", "sku-1", "", "\x00", "\ud800x", "💥" * 50,
                       "2025-01-01T00:00:00Z", str(uuid.uuid4()), "1" * 5000])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=80), inner,
                                                                max_size=4),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["view", "rating", "dwell", "search", "purchase"]) | json_values,
        "item": st.sampled_from(["sku-1", "sku-2", "missing"]) | json_values,
        "value": json_values | st.floats() | st.integers(),
        "timestamp": json_values | st.integers(min_value=-(10**20), max_value=10**20),
        "context": json_values,
        "event_id": st.sampled_from([str(uuid.uuid4()) for _ in range(3)]) | json_values,
        "subject": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda e: json.dumps(e).encode(), event_like),
    st.builds(lambda es: json.dumps({"events": es}).encode(), st.lists(event_like, max_size=8)),
    st.builds(lambda v: json.dumps(v).encode(), json_values),
    st.builds(lambda es: json.dumps(es, allow_nan=True).encode(),
              st.lists(st.dictionaries(st.sampled_from(["type", "value", "item"]),
                                       st.floats()), max_size=3)),
    st.builds(lambda s: s.encode("utf-8", "surrogatepass"), st.text(max_size=200)),
)


@pytest.mark.parametrize("caller", ["browser", "server"])
@hsettings(max_examples=150, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_fuzz_never_500(caller, body, consenting, server_user, items, client):  # noqa: F811
    browser_client, token, _ = consenting
    if caller == "browser":
        response = post(browser_client, body, token)
    else:
        response = client.post(URL, body, content_type="application/json", **basic_auth())
    assert response.status_code in (200, 400, 413)
    data = response.json()
    if response.status_code == 200:
        assert data["accepted"] + data["duplicate"] >= 1
    elif "results" in data:
        assert all(r["reason"] for r in data["results"] if r["status"] == "rejected")
    else:
        assert data["detail"]


# --- real services ---------------------------------------------------------------


@pytest.mark.services
@pytest.mark.skipif(os.environ.get("PERSONALIZE_TEST_SERVICES") != "1",
                    reason="needs PERSONALIZE_TEST_SERVICES=1 (real PostgreSQL and Redis)")
def test_against_real_postgresql_and_redis(consenting, items, settings):  # noqa: F811
    from django.core.cache import caches
    from django.db import connection

    cache = caches["default"]
    assert connection.vendor == "postgresql"
    assert "redis" in type(cache).__module__
    client, token, subject = consenting
    uid = str(uuid.uuid4())
    batch = {"events": [
        {"event_id": uid, "type": "view", "item": "sku-1",
         "context": {"query": "Grüße 🚀 中文", "n": 10**20, "ok": True}},
        {"event_id": uid, "type": "view", "item": "sku-1"},
        {"type": "view", "item": "sku-2", "context": {"bad": "nul\x00"}},
        {"type": "view", "item": "\ud800"},
    ]}
    body = json.dumps(batch).encode()
    first = post(client, body, token)
    assert [r["status"] for r in first.json()["results"]] == [
        "accepted", "duplicate", "rejected", "rejected"]
    assert post(client, body, token).json()["results"][0]["status"] == "duplicate"
    stored = Event.objects.get()
    assert stored.context == {"query": "Grüße 🚀 中文", "n": 10**20, "ok": True}

    # The rate-limit counters live in Redis (atomic INCR).
    # A per-day window: its counter is fresh (the posts above counted per minute),
    # and no window boundary falls between the next two posts but at midnight.
    settings.PERSONALIZE = {**settings.PERSONALIZE, "RATE_LIMITS": {"subject": "3/day"}}
    assert post(client, [{"type": "view", "item": "sku-3"}] * 3, token).status_code == 200
    limited = post(client, {"type": "view", "item": "sku-3"}, token)
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert any(f"subject:{subject.pk}" in k for k in cache.keys("personalize:rl:*"))


@pytest.mark.parametrize(
    ("error", "status"),
    [("DataError", 400), ("OperationalError", 503)],
)
def test_database_errors_are_not_500(consenting, items, error, status):  # noqa: F811
    from unittest import mock

    from django import db

    client, token, _ = consenting
    with mock.patch("personalize.api.events.ingest_events",
                    side_effect=getattr(db, error)("boom")):
        response = post(client, {"type": "view", "item": "sku-1"}, token)
    assert response.status_code == status
    assert response.json()["detail"]
    if status == 503:
        assert response["Retry-After"] == "30"
