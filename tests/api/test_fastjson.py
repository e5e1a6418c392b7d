"""FastJSONRenderer: orjson's speed, DRF's JSONRenderer's meaning."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import numpy as np
import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict

from personalize.api.fastjson import FastJSONRenderer

BLOCK = {
    "placement": "home",
    "heading": "Recommended for You",
    "personalized": True,
    "results": [
        {"item": "sku-1", "title": "Café crème, 250 g ✓", "url": None,
         "categories": ["Küche", "日本"], "score": 0.8312345678901234, "strategy": "ease",
         "personalized": True, "explanation": "Because you viewed <b>&</b> \"quotes\""},
        {"item": "sku-2", "title": "", "url": "/p/2/", "categories": [], "score": -1e-05,
         "strategy": "popular", "personalized": False, "explanation": "Popular right now"},
    ],
}


def _both(data, accepted_media_type=None, context=None):
    return (FastJSONRenderer().render(data, accepted_media_type, context),
            JSONRenderer().render(data, accepted_media_type, context))


def test_a_block_means_the_same_and_stays_compact_utf8():
    fast, drf = _both(BLOCK)
    assert json.loads(fast) == json.loads(drf) == BLOCK
    assert fast.startswith(b'{"placement":"home","heading":"Recommended for You",')
    assert "Café".encode() in fast  # not \u-escaped


def test_line_separators_are_escaped_as_drf_does():
    data = {"title": "one\u2028two\u2029three"}
    fast, drf = _both(data)
    assert fast == drf
    assert b"\\u2028" in fast and b"\\u2029" in fast


@pytest.mark.parametrize("value", [
    decimal.Decimal("1.50"),
    gettext_lazy("Recommended for you"),
    datetime.datetime(2026, 11, 23, 18, 30, 5, 123456, tzinfo=datetime.UTC),
    datetime.date(2026, 11, 23),
    datetime.time(8, 5, 1),
    datetime.timedelta(minutes=3),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    np.float32(0.5),
    np.int64(7),
    np.arange(3),
], ids=lambda v: type(v).__name__)
def test_types_orjson_does_not_know_are_encoded_by_drf(value):
    fast, drf = _both({"value": value})
    assert json.loads(fast) == json.loads(drf)


def test_datetimes_keep_drfs_format():
    moment = datetime.datetime(2026, 11, 23, 18, 30, 5, 123456, tzinfo=datetime.UTC)
    fast, drf = _both({"at": moment})
    assert fast == drf == b'{"at":"2026-11-23T18:30:05.123456Z"}'


def test_drf_containers_and_non_string_keys():
    data = ReturnDict({1: "one", "two": [1, 2]}, serializer=None)
    fast, drf = _both(data)
    assert json.loads(fast) == json.loads(drf) == {"1": "one", "two": [1, 2]}


def test_an_integer_beyond_64_bits_falls_back_to_drf():
    fast, drf = _both({"n": 2**70})
    assert fast == drf


def test_what_drf_cannot_encode_still_raises():
    with pytest.raises(TypeError):
        FastJSONRenderer().render({"x": object()})


def test_indented_output_is_drfs():
    fast, drf = _both(BLOCK, "application/json; indent=2")
    assert fast == drf
    assert b'\n  "placement"' in fast
    assert _both(BLOCK, None, {"indent": 4})[0] == _both(BLOCK, None, {"indent": 4})[1]


@pytest.mark.parametrize("setting", [{"UNICODE_JSON": False}, {"COMPACT_JSON": False},
                                     {"STRICT_JSON": False}])
def test_non_default_drf_settings_are_drfs(settings, setting):
    settings.REST_FRAMEWORK = {**getattr(settings, "REST_FRAMEWORK", {}), **setting}

    class Renderer(FastJSONRenderer):  # class attributes are read from the settings at import
        ensure_ascii = not setting.get("UNICODE_JSON", True)
        compact = setting.get("COMPACT_JSON", True)
        strict = setting.get("STRICT_JSON", True)

    class Drf(JSONRenderer):
        ensure_ascii, compact, strict = Renderer.ensure_ascii, Renderer.compact, Renderer.strict

    data = {**BLOCK, "nan": float("nan")} if "STRICT_JSON" in setting else BLOCK
    assert Renderer().render(data) == Drf().render(data)


def test_none_is_an_empty_body():
    assert FastJSONRenderer().render(None) == b""
