"""The privacy choices page (GET /personalize/consent/) and the page a refused decision gets."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client, override_settings

from personalize.consent.service import grant_consent, revoke_consent
from personalize.models import ConsentRecord, Event, Item, Subject

pytestmark = pytest.mark.django_db

URL = "/personalize/consent/"
COOKIE = "personalize_vid"


def personalize(**overrides):
    return override_settings(PERSONALIZE={**settings.PERSONALIZE, **overrides})


@pytest.fixture
def visitor(browser):
    """A visitor (cookie and subject) with three recorded events."""
    from django.http import HttpResponse

    from personalize.identity import COOKIE_SALT

    subject = Subject.objects.create(visitor_id="vid-prefs")
    response = HttpResponse()
    response.set_signed_cookie(COOKIE, "vid-prefs", salt=COOKIE_SALT)
    browser.cookies[COOKIE] = response.cookies[COOKIE].value
    item = Item.objects.create(external_id="i1", title="Caliper")
    for event_type in ("view", "add_to_cart", "purchase"):
        Event.objects.create(subject=subject, item=item, event_type=event_type)
    return subject


def purposes(html: str) -> dict[str, str]:
    """{purpose: granted|denied} as the page shows them."""
    return dict(re.findall(
        r'data-personalize-purpose="([^"]+)" data-personalize-purpose-state="([^"]+)"', html))


def section(html: str, purpose: str) -> str:
    return html.split(f'data-personalize-purpose="{purpose}"', 1)[1].split("</section>", 1)[0]


def page_form(html: str, purpose: str) -> tuple[str, dict[str, str], list[str]]:
    """(action, hidden fields, the granted values of its buttons) of a purpose's form."""
    part = section(html, purpose)
    action = re.search(r'<form [^>]*action="([^"]+)"', part).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', part))
    return action, fields, re.findall(r'name="granted" value="(\d)"', part)


def test_the_page_shows_each_purpose_and_its_state(browser):
    response = browser.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "no-cache" in response["Cache-Control"]  # one visitor's choices: never cached
    html = response.content.decode()
    assert "<title>Privacy choices</title>" in html
    assert purposes(html) == {"personalization": "denied", "analytics": "denied"}
    assert "Personalized recommendations" in html and "Measurement" in html
    assert "You have not chosen yet" in html
    action, fields, buttons = page_form(html, "personalization")
    assert action == URL and fields["purpose"] == "personalization"
    assert fields["csrfmiddlewaretoken"] and fields["next"] == URL
    assert buttons == ["1", "0"]  # turn on, keep off
    assert not Subject.objects.exists(), "looking creates nothing"
    assert COOKIE not in response.cookies


def test_a_granted_purpose_says_what_turning_it_off_erases(browser, visitor):
    grant_consent(visitor)
    html = browser.get(URL).content.decode()
    assert purposes(html) == {"personalization": "granted", "analytics": "denied"}
    part = section(html, "personalization")
    assert "You chose this on" in part
    assert ("Turning this off stops recording what you do here and erases the 3 events "
            "recorded about you") in part
    assert page_form(html, "personalization")[2] == ["0"]  # turn off
    with personalize(ON_CONSENT_REVOKED="anonymize"):
        part = section(browser.get(URL).content.decode(), "personalization")
    assert "unlinks the 3 events recorded about you" in part
    grant_consent(visitor, "analytics")
    part = section(browser.get(URL).content.decode(), "analytics")
    assert "nothing already stored is erased" in part


def test_turning_personalization_off_on_the_page_erases_the_history(browser, visitor):
    grant_consent(visitor)
    action, fields, _ = page_form(browser.get(URL).content.decode(), "personalization")
    response = browser.post(action, {**fields, "granted": "0"})
    assert response.status_code == 302 and response["Location"] == URL
    latest = ConsentRecord.objects.filter(subject=visitor).order_by("-id").first()
    assert (latest.purpose, latest.granted, latest.source) == ("personalization", False, "banner")
    assert not Event.objects.filter(subject=visitor).exists(), "ON_CONSENT_REVOKED='erase'"
    html = browser.get(URL).content.decode()
    assert purposes(html)["personalization"] == "denied"
    assert "Your privacy choices were saved." in html
    action, fields, buttons = page_form(html, "personalization")
    assert buttons == ["1"]
    browser.post(action, {**fields, "granted": "1"})
    assert purposes(browser.get(URL).content.decode())["personalization"] == "granted"


def test_turning_a_purpose_on_records_only_that_purpose(browser):
    action, fields, _ = page_form(browser.get(URL).content.decode(), "analytics")
    response = browser.post(action, {**fields, "granted": "1"})
    assert COOKIE in response.cookies, "the decision is remembered"
    assert list(ConsentRecord.objects.values_list("purpose", "granted")) == [("analytics", True)]


def test_a_browser_signal_is_explained_and_offers_no_form(browser, visitor):
    grant_consent(visitor)
    html = browser.get(URL, headers={"Sec-GPC": "1"}).content.decode()
    assert purposes(html) == {"personalization": "denied", "analytics": "denied"}
    assert "Your browser sends Global Privacy Control" in html
    assert "<form" not in html


def test_a_same_site_next_gives_a_link_back(browser):
    html = browser.get(URL, {"next": "/cart/?x=1"}).content.decode()
    assert '<a class="personalize-preferences__back" href="/cart/?x=1">' in html
    _, fields, _ = page_form(html, "analytics")
    assert fields["next"] == "/personalize/consent/?next=%2Fcart%2F%3Fx%3D1"
    for unsafe in ("https://evil.example/", "//evil.example/"):
        assert "personalize-preferences__back" not in browser.get(
            URL, {"next": unsafe}).content.decode()


def test_the_export_link_needs_the_rest_api(browser):
    html = browser.get(URL).content.decode()
    assert 'href="/api/personalize/me/data/" download' in html


@pytest.mark.urls("tests.templatetags.consent_urls")
def test_without_the_rest_api_there_is_no_export_link(browser):
    assert "personalize-preferences__export" not in browser.get(URL).content.decode()


def test_site_purposes_and_texts_come_from_settings(browser, visitor):
    texts = {"newsletter": {"label": "Our newsletter", "description": "A weekly email.",
                            "withdrawal": "We stop emailing you."},
             "analytics": {"label": "Statistics"}}
    with personalize(CONSENT_PURPOSES=["personalization", "analytics", "newsletter"],
                     CONSENT_PURPOSE_TEXTS=texts):
        grant_consent(visitor, "newsletter")
        html = browser.get(URL).content.decode()
    assert list(purposes(html)) == ["personalization", "analytics", "newsletter"]
    assert "Statistics" in section(html, "analytics")
    part = section(html, "newsletter")
    assert "Our newsletter" in part and "A weekly email." in part
    assert "We stop emailing you." in part


def test_the_page_can_be_overridden_by_the_site(browser, tmp_path):
    (tmp_path / "personalize").mkdir()
    (tmp_path / "personalize" / "base.html").write_text(
        "<body class=site>{% block content %}{% endblock %}</body>")
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    with override_settings(TEMPLATES=templates):
        html = browser.get(URL).content.decode()
    assert html.startswith("<body class=site>") and "data-personalize-preferences" in html
    (tmp_path / "personalize" / "consent_preferences.html").write_text(
        "MINE {% for c in preferences.choices %}{{ c.purpose }}={{ c.granted }} {% endfor %}")
    with override_settings(TEMPLATES=templates):
        html = browser.get(URL).content.decode()
    assert html == "MINE personalization=False analytics=False "


def test_a_crawler_accepting_gets_a_page_saying_why(browser):
    agent = "Mozilla/5.0 (compatible; Googlebot/2.1)"
    response = browser.post(URL, {"csrfmiddlewaretoken": browser.csrf, "granted": "1",
                                  "next": "/shop/"}, headers={"User-Agent": agent})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert 'data-personalize-consent-refused="crawler"' in html
    assert "identified itself as an automated program" in html
    assert f"<code>{agent}</code>" in html
    assert '<a href="/shop/">' in html
    assert not Subject.objects.exists() and not ConsentRecord.objects.exists()
    fetched = browser.post(URL, {"csrfmiddlewaretoken": browser.csrf, "granted": "1"},
                           headers={"User-Agent": agent, "Accept": "application/json"})
    assert fetched.status_code == 403
    assert fetched.json()["reason"] == "crawler"
    assert "automated program" in fetched.json()["detail"]


def test_without_the_visitor_middleware_the_page_says_so(browser):
    middleware = [m for m in settings.MIDDLEWARE if "VisitorMiddleware" not in m]
    with override_settings(MIDDLEWARE=middleware):
        response = browser.post(URL, {"csrfmiddlewaretoken": browser.csrf, "granted": "1"})
    assert response.status_code == 403
    html = response.content.decode()
    assert 'data-personalize-consent-refused="no_visitor_cookie"' in html
    assert "could not give your browser the cookie" in html


def test_a_signed_in_user_changes_their_own_choices(visitor):
    from django.contrib.auth.models import User

    user = User.objects.create_user("ada", password="pw")
    client = Client()
    client.force_login(user)
    client.post(URL, {"purpose": "personalization", "granted": "1", "next": URL})
    assert purposes(client.get(URL).content.decode())["personalization"] == "granted"
    revoke_consent(user)
    assert purposes(client.get(URL).content.decode())["personalization"] == "denied"
    assert ConsentRecord.objects.filter(subject__user=user).count() == 2
