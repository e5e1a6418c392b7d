"""personalize.consent.preferences: what the privacy choices page shows."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings

from personalize.consent.preferences import (
    CRAWLER,
    NO_VISITOR_COOKIE,
    preferences,
    purpose_texts,
    refusal_reason,
    withdrawal_effect,
)
from personalize.consent.service import grant_consent, revoke_consent
from personalize.models import Subject

pytestmark = pytest.mark.django_db


def personalize(**overrides):
    return override_settings(PERSONALIZE={**settings.PERSONALIZE, **overrides})


def test_preferences_of_a_subject(subject, make_events):
    make_events(subject, n=4)
    grant_consent(subject)
    prefs = preferences(subject)
    assert [c.purpose for c in prefs.choices] == ["personalization", "analytics"]
    first, second = prefs.choices
    assert (first.granted, first.is_decided, first.state.decided_by) == (True, True, "explicit")
    assert (second.granted, second.is_decided) == (False, False)
    assert prefs.events_held == 4 and not prefs.decided and prefs.signal is None
    assert "erases the 4 events" in first.withdrawal
    revoke_consent(subject, "analytics")
    assert preferences(subject).decided


def test_preferences_of_a_newcomer_create_nothing():
    prefs = preferences(RequestFactory().get("/", headers={"DNT": "1"}))
    assert prefs.events_held == 0 and prefs.signal == "dnt"
    assert all(c.by_signal and not c.granted for c in prefs.choices)
    assert not Subject.objects.exists()


def test_withdrawal_effect_by_purpose_and_setting():
    assert withdrawal_effect("personalization", 1).startswith(
        "Turning this off stops recording what you do here and erases the 1 event recorded")
    assert "Recommendations stop using it." in withdrawal_effect("personalization", 1)
    with personalize(ON_CONSENT_REVOKED="anonymize"):
        assert "unlinks the 2 events recorded about you" in withdrawal_effect(
            "personalization", 2)
    assert withdrawal_effect("analytics", 5) == (
        "Turning this off stops it from now on; nothing already stored is erased.")
    with personalize(CONSENT_PURPOSE_TEXTS={"analytics": {"withdrawal": "Counts stop."}}):
        assert withdrawal_effect("analytics", 5) == "Counts stop."


def test_purpose_texts_merge_settings_over_the_built_in_ones():
    assert purpose_texts("personalization")["label"] == "Personalized recommendations"
    with personalize(CONSENT_PURPOSES=["personalization", "analytics", "ad_measurement"],
                     CONSENT_PURPOSE_TEXTS={"personalization": {"label": "For you"}}):
        texts = purpose_texts("personalization")
        assert texts["label"] == "For you" and "recommend products" in texts["description"]
        assert purpose_texts("ad_measurement") == {
            "label": "Ad measurement", "description": "", "withdrawal": ""}


def test_refusal_reason():
    assert refusal_reason(RequestFactory().get("/", headers={"User-Agent": "bingbot"})) == (
        CRAWLER)
    assert refusal_reason(RequestFactory().get("/")) == NO_VISITOR_COOKIE
