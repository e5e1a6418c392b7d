"""The endpoints render with DRF's defaults, or with the renderers the settings name."""

from __future__ import annotations

import pytest
from django.core.checks import Error

from personalize import checks
from personalize.models import Placement
from tests.serving.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

URL = "/api/personalize/recommendations/"


@pytest.fixture(autouse=True)
def home(db) -> Placement:
    return Placement.objects.create(name="home")


class ShoutingRenderer:
    """Not a DRF renderer."""


def test_drf_defaults_render_the_endpoints(client, catalog_items, active_models, settings):
    settings.REST_FRAMEWORK = {**getattr(settings, "REST_FRAMEWORK", {}),
                               "DEFAULT_RENDERER_CLASSES": [
                                   "rest_framework.renderers.BrowsableAPIRenderer",
                                   "rest_framework.renderers.JSONRenderer"]}
    html = client.get(URL, {"limit": 2}, HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert client.get(URL, {"limit": 2}).json()["placement"] == "home"


def test_the_setting_names_the_renderers(client, catalog_items, active_models, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "API_RENDERER_CLASSES": [
        "personalize.api.fastjson.FastJSONRenderer"]}
    response = client.get(URL, {"limit": 2}, HTTP_ACCEPT="text/html")
    assert response.status_code == 406  # the browsable API is not among them
    fast = client.get(URL, {"limit": 2})
    assert fast["Content-Type"] == "application/json"
    assert fast.content.startswith(b'{"placement":"home",')  # compact, as orjson writes it
    events = client.post("/api/personalize/events/", b"[]", content_type="application/json")
    assert events["Content-Type"] == "application/json"


def test_e046_renderers_must_be_importable_drf_renderers(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "API_RENDERER_CLASSES": [
        "personalize.api.fastjson.FastJSONRenderer", "no.such.Renderer",
        "tests.api.test_renderers.ShoutingRenderer"]}
    errors = checks.check_api()
    assert [e.id for e in errors] == ["personalize.E046"] * 2
    assert errors[0].msg.startswith("Cannot import DRF renderer class 'no.such.Renderer'")
    assert errors[1] == Error(
        "'tests.api.test_renderers.ShoutingRenderer' is not a DRF renderer class.",
        hint="Subclass rest_framework.renderers.BaseRenderer.",
        obj="PERSONALIZE['API_RENDERER_CLASSES']", id="personalize.E046",
    )
    settings.PERSONALIZE = {**settings.PERSONALIZE, "API_RENDERER_CLASSES": "fast"}
    assert [e.id for e in checks.check_api()] == ["personalize.E046"]
    settings.PERSONALIZE = {**settings.PERSONALIZE, "API_RENDERER_CLASSES": None}
    assert checks.check_api() == []
