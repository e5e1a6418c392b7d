"""System checks personalize.E013-E019 (consent and retention settings), exact messages."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.checks import Error
from django.test import override_settings

from personalize.checks import check_consent_and_retention


def run(**overrides):
    with override_settings(PERSONALIZE={**settings.PERSONALIZE, **overrides}):
        return check_consent_and_retention()


def test_defaults_pass():
    assert run() == []


def test_e013_missing_required_purpose():
    assert run(CONSENT_PURPOSES=["analytics", "newsletter"]) == [Error(
        "PERSONALIZE['CONSENT_PURPOSES'] lacks 'personalization'.",
        hint="Tracking and recommendations ask for 'personalization' and 'analytics'; "
             "keep both and add your own.",
        obj="PERSONALIZE['CONSENT_PURPOSES']", id="personalize.E013",
    )]


@pytest.mark.parametrize("value", ["personalization", ["personalization", "analytics", "Bad"],
                                   ["personalization", "analytics", "analytics"],
                                   ["personalization", "analytics", "x" * 33]])
def test_e014_malformed_purposes(value):
    assert run(CONSENT_PURPOSES=value) == [Error(
        f"PERSONALIZE['CONSENT_PURPOSES'] is {value!r}.",
        hint="Use a list of distinct names of lower-case letters, digits and underscores, "
             "at most 32 characters each.",
        obj="PERSONALIZE['CONSENT_PURPOSES']", id="personalize.E014",
    )]


@pytest.mark.parametrize("value", [0, -5, 3.5, "30", True])
def test_e015_retention_days(value):
    assert run(RETENTION_DAYS=value) == [Error(
        f"PERSONALIZE['RETENTION_DAYS'] is {value!r}.",
        hint="Use a whole number of days greater than 0, or None to keep events forever.",
        obj="PERSONALIZE['RETENTION_DAYS']", id="personalize.E015",
    )]


def test_retention_none_is_allowed():
    assert run(RETENTION_DAYS=None) == []


@pytest.mark.parametrize("value", ["", "   ", None, 2, "v" * 33])
def test_e016_policy_version(value):
    assert run(CONSENT_POLICY_VERSION=value) == [Error(
        f"PERSONALIZE['CONSENT_POLICY_VERSION'] is {value!r}.",
        hint="Use a non-empty string of at most 32 characters, e.g. '2024-05'; "
             "it is stored with every consent record.",
        obj="PERSONALIZE['CONSENT_POLICY_VERSION']", id="personalize.E016",
    )]


@pytest.mark.parametrize("key", ["HONOR_GPC", "HONOR_DNT", "CONSENT_REASK_ON_POLICY_CHANGE"])
def test_e017_flags_are_booleans(key):
    assert run(**{key: "no"}) == [Error(
        f"PERSONALIZE[{key!r}] is 'no'.", hint="Use True or False.",
        obj=f"PERSONALIZE[{key!r}]", id="personalize.E017",
    )]


def test_e018_consent_cache_ttl():
    assert run(CONSENT_CACHE_TTL=0) == [Error(
        "PERSONALIZE['CONSENT_CACHE_TTL'] is 0.",
        hint="Use a whole number of seconds greater than 0; every consent change "
             "clears the cached state anyway.",
        obj="PERSONALIZE['CONSENT_CACHE_TTL']", id="personalize.E018",
    )]


def test_e019_retention_chunk_size():
    assert run(RETENTION_CHUNK_SIZE=None) == [Error(
        "PERSONALIZE['RETENTION_CHUNK_SIZE'] is None.",
        hint="Use a whole number of rows greater than 0 (e.g. 5000).",
        obj="PERSONALIZE['RETENTION_CHUNK_SIZE']", id="personalize.E019",
    )]


def test_checks_are_registered():
    from django.core import checks

    with override_settings(PERSONALIZE={**settings.PERSONALIZE, "RETENTION_DAYS": -1}):
        ids = {m.id for m in checks.run_checks()}
    assert "personalize.E015" in ids


E022_HINT = ("Use {purpose: {'label': ..., 'description': ..., 'withdrawal': ...}} for "
             "purposes in CONSENT_PURPOSES, e.g. {'newsletter': {'label': _('Newsletter')}}.")


def e022(message):
    return Error(message, hint=E022_HINT, obj="PERSONALIZE['CONSENT_PURPOSE_TEXTS']",
                 id="personalize.E022")


@pytest.mark.parametrize(("texts", "message"), [
    (["label"], "PERSONALIZE['CONSENT_PURPOSE_TEXTS'] is ['label'], not a dict."),
    ({"newsletter": {"label": "News"}},
     "PERSONALIZE['CONSENT_PURPOSE_TEXTS']['newsletter'] names a purpose that is not in "
     "CONSENT_PURPOSES."),
    ({"analytics": "Statistics"},
     "PERSONALIZE['CONSENT_PURPOSE_TEXTS']['analytics'] is 'Statistics', not a dict."),
    ({"analytics": {"title": "Statistics"}},
     "PERSONALIZE['CONSENT_PURPOSE_TEXTS']['analytics'] has unknown key 'title'; valid keys: "
     "label, description, withdrawal."),
    ({"analytics": {"label": 3}},
     "PERSONALIZE['CONSENT_PURPOSE_TEXTS']['analytics']['label'] is 3, not a string."),
])
def test_e022_purpose_texts(texts, message):
    assert run(CONSENT_PURPOSE_TEXTS=texts) == [e022(message)]


def test_e022_accepts_lazy_translations():
    from django.utils.translation import gettext_lazy

    assert run(CONSENT_PURPOSE_TEXTS={"analytics": {"label": gettext_lazy("Statistics"),
                                                    "withdrawal": "Nothing is erased."}}) == []
