"""{% consent_banner %} and {% consent_attrs %}: what a page shows before and after deciding."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.conf import settings
from django.template import Context, Template
from django.test import Client, RequestFactory, override_settings

from personalize.consent.service import grant_consent, revoke_consent
from personalize.models import ConsentRecord, Subject

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.templatetags.consent_urls")]

COOKIE = "personalize_vid"


def personalize(**overrides):
    return override_settings(PERSONALIZE={**settings.PERSONALIZE, **overrides})


def render(source, request=None):
    return Template("{% load personalize_consent %}" + source).render(
        Context({"request": request} if request is not None else {}))


def html_attrs(html):
    return re.search(r"<html ([^>]*)>", html).group(1)


def banner_form(html):
    """(action, {field: value}) of the banner form in a page."""
    action = re.search(r'<form [^>]*action="([^"]+)"', html).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return action, fields


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def visitor_with(client):
    subject = Subject.objects.create(visitor_id="vid-tags")
    client.cookies[COOKIE] = _signed("vid-tags")
    return subject


def _signed(visitor_id):
    from django.http import HttpResponse

    from personalize.identity import COOKIE_SALT

    response = HttpResponse()
    response.set_signed_cookie(COOKIE, visitor_id, salt=COOKIE_SALT)
    return response.cookies[COOKIE].value


# --- consent_attrs -----------------------------------------------------------------------


def test_attrs_without_request_are_denied():
    assert render("{% consent_attrs %}") == (
        'data-personalize-consent="denied" data-personalize-consent-analytics="denied"')


def test_attrs_follow_the_visitors_state(browser):
    subject = visitor_with(browser)
    assert html_attrs(browser.get("/page/").content.decode()) == (
        'lang="en" data-personalize-consent="denied" data-personalize-consent-analytics="denied"')
    grant_consent(subject)
    assert html_attrs(browser.get("/page/").content.decode()) == (
        'lang="en" data-personalize-consent="granted" data-personalize-consent-analytics="denied"')
    html = browser.get("/page/", headers={"Sec-GPC": "1"}).content.decode()
    assert 'data-personalize-consent="denied"' in html


def test_attrs_in_opt_out_mode_are_granted_by_default():
    with personalize(CONSENT_MODE="opt-out"):
        assert render("{% consent_attrs %}", RequestFactory().get("/")) == (
            'data-personalize-consent="granted" data-personalize-consent-analytics="granted"')


def test_attrs_name_other_purposes_with_hyphens():
    with personalize(CONSENT_PURPOSES=["personalization", "analytics", "ad_measurement"]):
        out = render("{% consent_attrs %}")
    assert out.endswith(' data-personalize-consent-ad-measurement="denied"')


def test_attrs_fail_closed():
    with mock.patch("personalize.consent.service.get_consent", side_effect=RuntimeError):
        assert render("{% consent_attrs %}", RequestFactory().get("/")) == (
            'data-personalize-consent="denied"')


# --- consent_banner ----------------------------------------------------------------------


def test_banner_is_a_working_form_for_an_undecided_visitor(browser):
    html = browser.get("/page/?x=1").content.decode()
    assert "data-personalize-consent-banner" in html
    action, fields = banner_form(html)
    assert action == "/personalize/consent/"
    assert fields["next"] == "/page/?x=1"
    assert fields["csrfmiddlewaretoken"]
    assert re.findall(r'<button[^>]*name="granted" value="(\d)"', html) == ["1", "0"]
    assert '<a class="personalize-consent__policy" href="/privacy/">' in html
    assert '<script src="/static/personalize/consent.js" defer></script>' in html
    assert not Subject.objects.exists(), "showing the banner creates nothing"


def test_accepting_without_javascript_then_the_banner_is_gone(browser):
    action, fields = banner_form(browser.get("/page/").content.decode())
    response = browser.post(action, {**fields, "granted": "1"})
    assert response.status_code == 302
    assert response["Location"] == "/page/"
    assert COOKIE in response.cookies
    rows = set(ConsentRecord.objects.values_list("purpose", "granted", "source"))
    assert rows == {("personalization", True, "banner"), ("analytics", True, "banner")}
    html = browser.get("/page/").content.decode()
    assert "data-personalize-consent-banner" not in html
    assert 'data-personalize-consent="granted"' in html


def test_declining_hides_the_banner_too(browser):
    action, fields = banner_form(browser.get("/page/").content.decode())
    browser.post(action, {**fields, "granted": "0"})
    html = browser.get("/page/").content.decode()
    assert "data-personalize-consent-banner" not in html
    assert 'data-personalize-consent="denied"' in html


def test_banner_shows_while_a_purpose_is_undecided(browser):
    subject = visitor_with(browser)
    grant_consent(subject)
    assert "data-personalize-consent-banner" in browser.get("/page/").content.decode()
    revoke_consent(subject, "analytics")
    assert "data-personalize-consent-banner" not in browser.get("/page/").content.decode()


@pytest.mark.parametrize("header", ["Sec-GPC", "DNT"])
def test_no_banner_when_the_browser_already_said_no(browser, header):
    assert "data-personalize-consent-banner" not in browser.get(
        "/page/", headers={header: "1"}).content.decode()


def test_banner_asks_again_after_policy_change_when_configured(browser):
    subject = visitor_with(browser)
    grant_consent(subject)
    grant_consent(subject, "analytics")
    with personalize(CONSENT_POLICY_VERSION="2", CONSENT_REASK_ON_POLICY_CHANGE=True):
        assert "data-personalize-consent-banner" in browser.get("/page/").content.decode()


def test_banner_without_request_renders_nothing():
    assert render("{% consent_banner %}") == ""


#: This module doubles as a URLconf without personalize.urls.
urlpatterns: list = []


@pytest.mark.urls(__name__)
def test_banner_renders_nothing_when_the_form_url_is_missing(caplog):
    assert render("{% consent_banner %}", RequestFactory().get("/")) == ""
    assert 'include("personalize.urls")' in caplog.text


def test_banner_degrades_quietly_on_errors(caplog):
    with mock.patch("personalize.consent.service.get_consent", side_effect=RuntimeError("boom")):
        assert render("{% consent_banner %}", RequestFactory().get("/")) == ""
    assert "consent_banner could not render" in caplog.text


def test_banner_template_can_be_replaced(browser, tmp_path):
    (tmp_path / "mine.html").write_text("MY BANNER {{ action }} {{ purposes|join:',' }}")
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    with override_settings(TEMPLATES=templates):
        out = render('{% consent_banner template_name="mine.html" %}',
                     RequestFactory().get("/"))
    assert out == "MY BANNER /personalize/consent/ personalization,analytics"


# --- the way back to the choices -----------------------------------------------------------


def test_banner_links_to_the_privacy_choices(browser):
    html = browser.get("/page/?x=1").content.decode()
    link = re.search(r'<a class="personalize-consent__choices" href="([^"]+)">', html).group(1)
    assert link == "/personalize/consent/?next=%2Fpage%2F%3Fx%3D1"
    page = browser.get(link.replace("&amp;", "&"))
    assert page.status_code == 200
    assert '<a class="personalize-preferences__back" href="/page/?x=1">' in page.content.decode()


def test_no_banner_on_the_privacy_choices_page_itself(browser):
    html = browser.get("/personalize/consent/").content.decode()
    assert "data-personalize-preferences" in html
    assert "data-personalize-consent-banner" not in html


def test_consent_preferences_tag_renders_the_choices_inline(browser):
    subject = visitor_with(browser)
    grant_consent(subject)
    html = browser.get("/choices/").content.decode()
    assert html.startswith("<main>") and "data-personalize-preferences" in html
    assert re.findall(r'data-personalize-purpose="([^"]+)" data-personalize-purpose-state="(\w+)"',
                      html) == [("personalization", "granted"), ("analytics", "denied")]
    forms = re.findall(r'<form [^>]*action="([^"]+)"', html)
    assert forms == ["/personalize/consent/"] * 2
    assert re.findall(r'name="next" value="([^"]+)"', html) == ["/choices/"] * 2
    action, fields = "/personalize/consent/", dict(re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
        html.split('data-personalize-purpose="personalization"')[1].split("</section>")[0]))
    response = browser.post(action, {**fields, "granted": "0"})
    assert response["Location"] == "/choices/"
    assert not ConsentRecord.objects.filter(purpose="personalization").latest("id").granted


def test_consent_preferences_tag_without_request_or_urls_renders_nothing(caplog):
    assert render("{% consent_preferences %}") == ""


@pytest.mark.urls(__name__)
def test_consent_preferences_tag_needs_the_form_url(caplog):
    assert render("{% consent_preferences %}", RequestFactory().get("/")) == ""
    assert 'include("personalize.urls")' in caplog.text
