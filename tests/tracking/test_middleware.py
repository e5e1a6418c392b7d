"""VisitorMiddleware: lazy subject, the signed visitor cookie, login and logout."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.http import HttpRequest
from django.test import Client
from django.test.utils import CaptureQueriesContext

from personalize.conf import personalize_settings
from personalize.consent.service import grant_consent
from personalize.identity import COOKIE_SALT
from personalize.models import Event, Subject
from tests.tracking.conftest import BOT_UA, BROWSER_UA

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.tracking.urls")]

COOKIE = "personalize_vid"


def test_request_that_never_asks_costs_no_query_and_sets_no_cookie(browser):
    with CaptureQueriesContext(connection) as queries:
        response = browser.get("/plain/")
    assert response.status_code == 200
    assert len(queries) == 0
    assert COOKIE not in response.cookies
    assert Subject.objects.count() == 0


def test_peeking_does_not_create_a_subject(browser):
    response = browser.get("/peek/")
    assert response.json() == {"key": None}
    assert COOKIE not in response.cookies
    assert Subject.objects.count() == 0


def test_first_use_creates_subject_and_sets_signed_httponly_cookie(browser):
    response = browser.get("/subject/")
    subject = Subject.objects.get()
    assert response.json()["key"] == subject.key
    morsel = response.cookies[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert int(morsel["max-age"]) == personalize_settings.VISITOR_COOKIE_AGE
    # The value is signed: the raw visitor id is followed by a signature.
    assert morsel.value != subject.visitor_id
    request = HttpRequest()
    request.COOKIES[COOKIE] = morsel.value
    assert request.get_signed_cookie(COOKIE, salt=COOKIE_SALT) == subject.visitor_id


def test_cookie_brings_back_the_same_subject_without_resetting_it(browser):
    first = browser.get("/subject/").json()["key"]
    again = browser.get("/subject/")
    assert again.json()["key"] == first
    assert COOKIE not in again.cookies  # no need to send it again
    assert Subject.objects.count() == 1


def test_tampered_cookie_is_ignored_and_replaced(browser):
    browser.get("/subject/")
    original = Subject.objects.get()
    browser.cookies[COOKIE] = original.visitor_id + ":forged-signature"
    response = browser.get("/subject/")
    assert response.json()["key"] != original.key
    assert Subject.objects.count() == 2


def test_unsigned_visitor_id_is_not_accepted(browser):
    browser.get("/subject/")
    original = Subject.objects.get()
    browser.cookies[COOKIE] = original.visitor_id
    assert browser.get("/subject/").json()["key"] != original.key


def test_cookie_settings_are_read_at_call_time(browser, settings):
    settings.PERSONALIZE = {
        **settings.PERSONALIZE, "VISITOR_COOKIE_NAME": "vid", "VISITOR_COOKIE_SAMESITE": "Strict",
        "VISITOR_COOKIE_SECURE": True,
    }
    response = browser.get("/subject/")
    morsel = response.cookies["vid"]
    assert morsel["samesite"] == "Strict"
    assert morsel["secure"] is True


def test_old_cookie_is_refreshed(browser):
    import time
    from unittest import mock

    from django.core import signing

    age = personalize_settings.VISITOR_COOKIE_AGE
    past = signing.b62_encode(int(time.time() - 0.75 * age))  # valid, past half its age
    with mock.patch.object(signing.TimestampSigner, "timestamp", return_value=past):
        key = browser.get("/subject/").json()["key"]
    response = browser.get("/subject/")
    assert response.json()["key"] == key
    assert COOKIE in response.cookies  # re-issued with a fresh timestamp
    assert COOKIE not in browser.get("/subject/").cookies


def test_crawlers_get_no_subject():
    client = Client(HTTP_USER_AGENT=BOT_UA)
    response = client.get("/subject/")
    assert response.json()["key"] is None
    assert COOKIE not in response.cookies
    assert Subject.objects.count() == 0


def test_signed_in_user_gets_their_own_subject(client):
    user = get_user_model().objects.create_user("ann", password="pw")
    client.force_login(user)
    response = client.get("/subject/", HTTP_USER_AGENT=BROWSER_UA)
    assert response.json()["key"] == Subject.objects.get(user=user).key
    assert COOKIE not in response.cookies


def test_login_adopts_the_anonymous_subject_on_first_sign_in(browser):
    user = get_user_model().objects.create_user("ann", password="pw")
    anon_key = browser.get("/subject/").json()["key"]
    response = browser.get(f"/login/{user.pk}/")
    subject = Subject.objects.get(user=user)
    assert response.json()["key"] == anon_key == subject.key
    assert subject.visitor_id is None
    assert response.cookies[COOKIE].value == ""  # the visitor cookie is dropped
    assert Subject.objects.count() == 1


def test_login_merges_into_an_existing_user_subject(browser, items):
    user = get_user_model().objects.create_user("ann", password="pw")
    user_subject = Subject.objects.create(user=user)
    grant_consent(user_subject)
    Event.objects.create(subject=user_subject, item=items["sku-1"], event_type="view")
    browser.get("/subject/")
    anon = Subject.objects.get(user=None)
    grant_consent(anon)
    Event.objects.create(subject=anon, item=items["sku-2"], event_type="click")
    Event.objects.create(subject=anon, item=items["sku-3"], event_type="view")

    response = browser.get(f"/login/{user.pk}/")

    assert response.json()["key"] == user_subject.key
    anon.refresh_from_db()
    assert anon.merged_into_id == user_subject.pk
    assert anon.visitor_id is None
    assert Event.objects.filter(subject=anon).count() == 0
    assert sorted(
        Event.objects.filter(subject=user_subject).values_list("item__external_id", flat=True)
    ) == ["sku-1", "sku-2", "sku-3"]
    assert Event.objects.count() == 3


def test_logout_starts_a_fresh_anonymous_subject(browser):
    user = get_user_model().objects.create_user("ann", password="pw")
    anon_key = browser.get("/subject/").json()["key"]
    browser.get(f"/login/{user.pk}/")
    browser.get("/logout/")
    fresh = browser.get("/subject/").json()["key"]
    assert fresh not in (anon_key, None)
    assert Subject.objects.get(key=fresh).user_id is None
    assert Subject.objects.get(user=user).key == anon_key


def test_logout_drops_the_visitor_cookie(browser):
    user = get_user_model().objects.create_user("ann", password="pw")
    browser.get("/subject/")
    browser.force_login(user)
    response = browser.get("/logout/")
    assert response.cookies[COOKIE].value == ""


def test_request_subject_follows_login_and_logout_within_a_request(browser):
    user = get_user_model().objects.create_user("ann", password="pw")
    Subject.objects.create(user=user)
    answer = browser.get(f"/switch/{user.pk}/").json()
    assert answer["after"] == Subject.objects.get(user=user).key
    assert answer["before"] != answer["after"]
    assert answer["after_logout"] not in (answer["before"], answer["after"])
