"""The schema endpoint with any DRF settings, and a docs page that needs no CDN."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from drf_spectacular.settings import patched_settings
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db
SCHEMA = "/api/personalize/schema/"
DOCS = "/api/personalize/docs/"


def get_schema(client: Client | None = None) -> dict:
    response = (client or Client()).get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content[:500]
    return response.json()


@pytest.mark.parametrize("rest_framework", [
    {},  # DRF's defaults: its own AutoSchema, which drf-spectacular cannot use
    {"DEFAULT_SCHEMA_CLASS": "rest_framework.schemas.openapi.AutoSchema"},
    {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"},
])
def test_the_schema_works_whatever_the_sites_default_schema_class(settings, rest_framework):
    settings.REST_FRAMEWORK = rest_framework
    schema = get_schema()
    validate_schema(schema)
    assert set(schema["paths"]) == {
        "/api/personalize/events/", "/api/personalize/consent/", "/api/personalize/me/data/",
        "/api/personalize/recommendations/", "/api/personalize/items/{external_id}/similar/",
        "/api/personalize/experiments/{id}/results/",
    }
    assert schema["info"]["title"] == "django-personalize"


def test_the_session_authentications_are_documented_as_the_session_cookie(settings, capsys):
    schema = get_schema()
    session_cookie = {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
    schemes = schema["components"]["securitySchemes"]
    for path, method, name in (("consent/", "post", "visitorSession"),
                               ("me/data/", "delete", "visitorSession"),
                               ("events/", "post", "browserSession")):
        assert schemes[name] == session_cookie
        assert {name: []} in schema["paths"][f"/api/personalize/{path}"][method]["security"]
    # drf-spectacular found nothing to warn about (it prints its warnings)
    assert "Warning" not in capsys.readouterr().err


def test_operation_ids_are_stable():
    paths = get_schema()["paths"]
    assert paths["/api/personalize/recommendations/"]["get"]["operationId"] == (
        "personalize_recommendations")
    assert paths["/api/personalize/items/{external_id}/similar/"]["get"]["operationId"] == (
        "personalize_similar_items")
    assert paths["/api/personalize/experiments/{id}/results/"]["get"]["operationId"] == (
        "personalize_experiment_results")


def test_a_site_title_is_kept():
    with patched_settings({"TITLE": "Acme API", "VERSION": "2.0"}):
        assert get_schema()["info"] == {"title": "Acme API", "version": "2.0"}


class AssetParser(HTMLParser):
    """Every URL the page makes the browser load."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def page_assets(html: str) -> list[str]:
    parser = AssetParser()
    parser.feed(html)
    return parser.urls


def test_the_docs_page_loads_swagger_ui_from_the_sites_static_files(settings):
    settings.REST_FRAMEWORK = {}
    response = Client().get(DOCS)
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"https?://", html.replace("http://www.w3.org", ""))
    assets = page_assets(html)
    assert {a.rsplit("/", 1)[-1] for a in assets} == {
        "favicon-32x32.png", "swagger-ui.css", "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    }
    for url in assets:
        assert url.startswith(settings.STATIC_URL + "drf_spectacular_sidecar/swagger-ui-dist/")
        # ... and the site's static files hold each of them (the sidecar app is installed)
        assert finders.find(url.removeprefix(settings.STATIC_URL)), url
    assert "/api/personalize/schema/" in html


def test_a_site_that_chose_its_own_swagger_ui_dist_keeps_it(settings):
    with patched_settings({"SWAGGER_UI_DIST": "/vendor/swagger"}):
        assets = page_assets(Client().get(DOCS).content.decode())
    assert "/vendor/swagger/swagger-ui-bundle.js" in assets
    assert settings.STATIC_URL + "drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png" in (
        assets)
