"""personalize.views.consent_form: the banner's plain-form endpoint."""

from __future__ import annotations

import pytest

from personalize.models import ConsentRecord, Subject

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.templatetags.consent_urls")]

URL = "/personalize/consent/"


def submit(client, data, **headers):
    return client.post(URL, {"csrfmiddlewaretoken": client.csrf, **data}, headers=headers)


def test_single_purpose_and_safe_next(browser):
    response = submit(browser, {"granted": "accept", "purpose": "analytics", "next": "/shop/?a=1"})
    assert response.status_code == 302 and response["Location"] == "/shop/?a=1"
    assert list(ConsentRecord.objects.values_list("purpose", "granted", "source")) == [
        ("analytics", True, "banner")]


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/x", ""])
def test_unsafe_next_goes_home(browser, next_url):
    response = submit(browser, {"granted": "0", "next": next_url})
    assert response["Location"] == "/"


def test_referer_is_used_without_next(browser):
    response = submit(browser, {"granted": "0"}, Referer="http://testserver/cart/")
    assert response["Location"] == "http://testserver/cart/"


def test_fetch_gets_the_consent_document(browser):
    response = submit(browser, {"granted": "1"}, Accept="application/json")
    assert response.status_code == 200
    body = response.json()
    assert body["decided"] is True
    assert body["purposes"]["personalization"]["source"] == "banner"
    assert "personalize_vid" in response.cookies


@pytest.mark.parametrize(("data", "field"), [
    ({}, "granted"), ({"granted": "perhaps"}, "granted"),
    ({"granted": "1", "purpose": "marketing"}, "purpose"),
])
def test_bad_input_is_400_naming_the_field(browser, data, field):
    response = submit(browser, data)
    assert response.status_code == 400
    assert response.content.decode().startswith(f"{field}: ")
    json_response = submit(browser, data, Accept="application/json")
    assert field in json_response.json()
    assert not ConsentRecord.objects.exists()


def test_csrf_is_required(browser):
    response = browser.post(URL, {"granted": "1"})
    assert response.status_code == 403
    assert not Subject.objects.exists()


def test_other_methods_are_not_allowed(browser):
    for method in (browser.put, browser.delete):
        assert method(URL, headers={"X-CSRFToken": browser.csrf}).status_code == 405


def test_crawlers_are_refused(browser):
    response = submit(browser, {"granted": "1"}, **{"User-Agent": "bingbot"})
    assert response.status_code == 403
    assert not Subject.objects.exists()
