import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from personalize.conf import (
    DEFAULT_EVENT_TYPES,
    DEFAULTS,
    PersonalizeSettings,
    personalize_settings,
)


def test_defaults_apply_when_key_not_set():
    assert personalize_settings.CACHE_ALIAS == "default"
    assert personalize_settings.MAX_BATCH_SIZE == DEFAULTS["MAX_BATCH_SIZE"]


def test_user_setting_overrides_default_and_reloads_on_change():
    with override_settings(PERSONALIZE={"CACHE_TTL": 17}):
        assert personalize_settings.CACHE_TTL == 17
    assert personalize_settings.CACHE_TTL == DEFAULTS["CACHE_TTL"]


def test_unknown_key_is_rejected_with_its_name():
    with override_settings(PERSONALIZE={"CACHE_TLL": 1}):
        with pytest.raises(ImproperlyConfigured, match="'CACHE_TLL'"):
            _ = personalize_settings.CACHE_TTL


def test_removed_key_says_what_replaces_it(monkeypatch):
    monkeypatch.setitem(
        __import__("personalize.conf").conf.REMOVED_SETTINGS, "OLD", "use NEW instead"
    )
    local = PersonalizeSettings()
    with override_settings(PERSONALIZE={"OLD": 1}):
        with pytest.raises(ImproperlyConfigured, match="use NEW instead"):
            _ = local.user_settings


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        _ = personalize_settings.NOT_A_SETTING


def test_non_dict_setting_is_rejected():
    with override_settings(PERSONALIZE=["x"]):
        with pytest.raises(ImproperlyConfigured, match="must be a dict"):
            _ = personalize_settings.CACHE_TTL


def test_extra_event_types_extend_the_builtin_weights():
    with override_settings(PERSONALIZE={"EXTRA_EVENT_TYPES": {"wishlist": 3.0}}):
        weights = personalize_settings.event_weights
    assert weights["wishlist"] == 3.0
    assert weights["purchase"] == DEFAULT_EVENT_TYPES["purchase"]


def test_implicit_weights_are_ordered_as_documented():
    w = DEFAULT_EVENT_TYPES
    assert w["view"] < w["click"] < w["add_to_cart"] < w["purchase"]
    assert w["dislike"] < 0
    assert w["rating"] is None
