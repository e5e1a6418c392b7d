"""Consent gating, browser signals, the append-only ledger and the state cache."""

from __future__ import annotations

import re
import uuid
from types import SimpleNamespace
from unittest import mock

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings
from rest_framework.request import Request

from personalize.backends.cache import personalize_cache
from personalize.consent import service
from personalize.consent.cache import consent_cache_key
from personalize.consent.service import (
    ConsentState,
    NoSubjectError,
    get_consent,
    grant_consent,
    has_consent,
    has_consent_many,
    revoke_consent,
)
from personalize.models import ConsentRecord, Event, Subject
from personalize.signals import subject_erased

pytestmark = pytest.mark.django_db(transaction=False)


def personalize(**overrides):
    return override_settings(PERSONALIZE={**settings.PERSONALIZE, **overrides})


def request_with(**headers):
    return RequestFactory().get("/", headers=headers)


# --- modes ---------------------------------------------------------------------


def test_opt_in_is_denied_until_granted(subject):
    assert has_consent(subject) is False
    assert get_consent(subject)["personalization"].decided_by == "default"
    grant_consent(subject)
    assert has_consent(subject) is True
    revoke_consent(subject)
    assert has_consent(subject) is False


def test_opt_out_is_granted_until_withdrawn(subject):
    with personalize(CONSENT_MODE="opt-out"):
        assert has_consent(subject) is True
        assert has_consent(subject, "analytics") is True
        revoke_consent(subject)
        assert has_consent(subject) is False
        assert has_consent(subject, "analytics") is True, "purposes are independent"
        grant_consent(subject)
        assert has_consent(subject) is True


@pytest.mark.parametrize(("mode", "expected"), [("opt-in", False), ("opt-out", True)])
def test_no_subject_gets_the_mode_default(mode, expected):
    with personalize(CONSENT_MODE=mode):
        assert has_consent(None) is expected
        assert has_consent(None, "analytics") is expected
        assert all(s.granted is expected for s in get_consent(None).values())


def test_purposes_are_independent(subject):
    grant_consent(subject, "analytics")
    assert has_consent(subject, "analytics") is True
    assert has_consent(subject, "personalization") is False


def test_subject_pk_is_accepted(subject):
    grant_consent(subject)
    assert has_consent(subject.pk) is True


def test_merged_subject_reads_the_surviving_subjects_consent(subject):
    target = Subject.objects.create()
    grant_consent(target)
    subject.merged_into = target
    subject.save()
    assert has_consent(subject) is True
    revoke_consent(subject)  # recorded on the survivor
    assert ConsentRecord.objects.filter(subject=target).count() == 2
    assert has_consent(target) is False


# --- browser signals -------------------------------------------------------------


@pytest.mark.parametrize(("header", "setting"), [("Sec-GPC", "HONOR_GPC"), ("DNT", "HONOR_DNT")])
@pytest.mark.parametrize("mode", ["opt-in", "opt-out"])
def test_signal_counts_as_withdrawal_unless_turned_off(subject, header, setting, mode):
    with personalize(CONSENT_MODE=mode):
        grant_consent(subject)
        request = request_with(**{header: "1"})
        assert has_consent(subject, request=request) is False
        state = get_consent(subject)["personalization"]
        assert state.granted and state.decided_by == "explicit"
        with personalize(CONSENT_MODE=mode, **{setting: False}):
            assert has_consent(subject, request=request) is True


@pytest.mark.parametrize("value", ["0", "", "yes"])
def test_only_value_1_is_a_signal(subject, value):
    grant_consent(subject)
    assert has_consent(subject, request=request_with(**{"Sec-GPC": value, "DNT": value})) is True


@pytest.mark.parametrize(
    "request_like",
    [
        request_with(**{"Sec-GPC": " 1 "}),
        Request(request_with(**{"Sec-GPC": "1"})),
        SimpleNamespace(META={"HTTP_SEC_GPC": "1"}),
        SimpleNamespace(headers={"Sec-GPC": "1"}),  # no META: its headers are read
    ],
    ids=["HttpRequest", "DRF Request", "META only", "headers only"],
)
def test_signal_is_read_from_meta_or_headers(request_like):
    assert service.browser_signal(request_like) == "gpc"
    with personalize(HONOR_GPC=False):
        assert service.browser_signal(request_like) is None


def test_no_headers_at_all_is_no_signal():
    assert service.browser_signal(SimpleNamespace()) is None
    assert service.browser_signal(SimpleNamespace(META={})) is None


def test_signal_applies_to_subjectless_visitor_in_opt_out():
    with personalize(CONSENT_MODE="opt-out"):
        assert has_consent(None, request=request_with(DNT="1")) is False
        assert has_consent(None, request=request_with()) is True


def test_get_consent_reports_signal_for_every_purpose():
    request = request_with(**{"Sec-GPC": "1"})
    states = get_consent(request)
    assert set(states) == {"personalization", "analytics"}
    for state in states.values():
        assert (state.granted, state.decided_by, state.source) == (False, "signal", "gpc")
        assert state.is_decided


def test_request_as_subject_argument_uses_its_headers(subject):
    request = request_with(DNT="1")
    with personalize(CONSENT_MODE="opt-out"):
        assert has_consent(request) is False


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize("call", [has_consent, grant_consent, revoke_consent])
def test_unknown_purpose_is_named(subject, call):
    with pytest.raises(ValueError, match=re.escape(
            "Unknown consent purpose 'marketing'; configured purposes: personalization, "
            "analytics.")):
        call(subject, "marketing")
    assert not ConsentRecord.objects.exists()


def test_site_purposes_come_from_settings(subject):
    with personalize(CONSENT_PURPOSES=("personalization", "analytics", "newsletter")):
        grant_consent(subject, "newsletter")
        assert has_consent(subject, "newsletter") is True
        assert list(get_consent(subject)) == ["personalization", "analytics", "newsletter"]


def test_unknown_source_and_long_policy_version_rejected(subject):
    with pytest.raises(ValueError, match="Unknown consent source 'email'"):
        grant_consent(subject, source="email")
    with pytest.raises(ValueError, match="longer than 32"):
        grant_consent(subject, policy_version="x" * 33)
    assert not ConsentRecord.objects.exists()


def test_request_without_subject_cannot_record():
    with pytest.raises(NoSubjectError):
        grant_consent(request_with())  # no VisitorMiddleware: nothing could set the cookie


# --- the ledger --------------------------------------------------------------------


def test_every_decision_appends_to_the_ledger(subject):
    grant_consent(subject, source="banner")
    revoke_consent(subject, "analytics", source="api", policy_version="2024-05")
    grant_consent(subject, source="banner")
    rows = list(ConsentRecord.objects.filter(subject=subject).order_by("id")
                .values_list("purpose", "granted", "source", "policy_version"))
    assert rows == [
        ("personalization", True, "banner", "1"),
        ("analytics", False, "api", "2024-05"),
        ("personalization", True, "banner", "1"),
    ]


def test_ledger_rows_are_never_edited(subject):
    grant_consent(subject)
    record = ConsentRecord.objects.get()
    record.granted = False
    with pytest.raises(ValueError, match="append-only"):
        record.save()
    assert ConsentRecord.objects.get().granted is True


def test_state_reports_when_and_under_which_policy(subject):
    with personalize(CONSENT_POLICY_VERSION="v7"):
        returned = grant_consent(subject, source="banner")
    state = get_consent(subject)["personalization"]
    record = ConsentRecord.objects.get()
    assert state == ConsentState("personalization", True, "explicit", record.created_at, "v7",
                                 "banner")
    assert returned == state
    assert state.as_dict()["since"] == record.created_at.isoformat()


def test_reask_on_policy_change_expires_old_grants_only(subject):
    with personalize(CONSENT_POLICY_VERSION="1"):
        grant_consent(subject)
        revoke_consent(subject, "analytics")
    with personalize(CONSENT_POLICY_VERSION="2", CONSENT_REASK_ON_POLICY_CHANGE=True):
        states = get_consent(subject)
        assert states["personalization"].decided_by == "default"
        assert has_consent(subject) is False
        assert states["analytics"].decided_by == "explicit", "a withdrawal never expires"
    with personalize(CONSENT_POLICY_VERSION="2"):
        assert has_consent(subject) is True


# --- the cache ------------------------------------------------------------------------


def test_state_is_cached_and_read_without_queries(subject, django_assert_num_queries):
    grant_consent(subject)
    assert has_consent(subject) is True  # fills the cache
    assert personalize_cache().get(consent_cache_key(subject.pk)) is not None
    with django_assert_num_queries(0):
        for _ in range(5):
            assert has_consent(subject) is True
            assert has_consent(subject, "analytics") is False


def test_every_ledger_write_invalidates_the_cache(subject):
    assert has_consent(subject) is False
    # A row written behind the service's back is not seen: the cache answers.
    ConsentRecord.objects.create(subject=subject, purpose="personalization", granted=True,
                                 policy_version="1", source="admin")
    assert has_consent(subject) is False
    grant_consent(subject, "analytics")  # any write drops the cached state
    assert personalize_cache().get(consent_cache_key(subject.pk)) is None
    assert has_consent(subject) is True
    revoke_consent(subject)
    assert has_consent(subject) is False


def test_many_at_once_matches_one_by_one(subject, django_assert_num_queries):
    others = [Subject.objects.create() for _ in range(4)]
    grant_consent(others[0])
    revoke_consent(others[1])
    grant_consent(others[2], "analytics")
    everyone = [subject, *others]
    assert has_consent(subject) is False  # one of them cached already
    with django_assert_num_queries(1):  # the four not cached, in one query
        result = has_consent_many([s.pk for s in everyone])
    assert result == {s.pk: has_consent(s) for s in everyone}
    assert result[others[0].pk] is True and list(result.values()).count(True) == 1
    with django_assert_num_queries(0):
        assert has_consent_many([s.pk for s in everyone]) == result
    assert has_consent_many([s.pk for s in everyone], request=request_with(DNT="1")) == {
        s.pk: False for s in everyone}
    with personalize(CONSENT_MODE="opt-out"):
        assert has_consent_many([others[1].pk, others[3].pk]) == {
            others[1].pk: False, others[3].pk: True}
    assert has_consent_many([]) == {}
    with pytest.raises(ValueError, match="'nope'"):
        has_consent_many([subject.pk], "nope")


def test_many_survives_a_cache_outage(subject):
    grant_consent(subject)
    broken = mock.Mock()
    broken.get_many.side_effect = ConnectionError("redis down")
    with mock.patch.object(service, "personalize_cache", return_value=broken):
        assert has_consent_many([subject.pk]) == {subject.pk: True}


def test_cache_outage_falls_back_to_the_ledger(subject):
    grant_consent(subject)
    broken = mock.Mock()
    broken.get.side_effect = ConnectionError("redis down")
    with mock.patch.object(service, "personalize_cache", return_value=broken):
        assert has_consent(subject) is True


# --- withdrawing personalization --------------------------------------------------------


def test_revoking_personalization_erases_events(subject, make_events):
    grant_consent(subject)
    make_events(subject, 4)
    other = Subject.objects.create()
    make_events(other, 2)
    revoke_consent(subject, "analytics")
    assert Event.objects.filter(subject=subject).count() == 4, "only personalization erases"
    with personalize(ON_CONSENT_REVOKED="erase"):
        revoke_consent(subject)
    assert not Event.objects.filter(subject=subject).exists()
    assert Event.objects.filter(subject=other).count() == 2


def test_revoking_personalization_anonymizes_events(subject, make_events, items):
    grant_consent(subject)
    old = make_events(subject, 3, value=2.5)
    with personalize(ON_CONSENT_REVOKED="anonymize"):
        revoke_consent(subject)
    assert not Event.objects.filter(subject=subject).exists()
    moved = list(Event.objects.all())
    assert len(moved) == 3
    bucket = Subject.objects.get(pk=moved[0].subject_id)
    assert bucket.pk != subject.pk
    assert (bucket.user_id, bucket.visitor_id, bucket.merged_into_id) == (None, None, None)
    assert not ConsentRecord.objects.filter(subject=bucket).exists()
    assert {e.subject_id for e in moved} == {bucket.pk}
    assert {e.event_id for e in moved}.isdisjoint({e.event_id for e in old}), "ids would link"
    assert all(e.context == {} for e in moved)
    assert sorted((e.item_id, e.event_type, e.value, e.timestamp) for e in moved) == sorted(
        (e.item_id, e.event_type, e.value, e.timestamp) for e in old)


def test_revoking_personalization_sends_subject_erased(subject, make_events,
                                                       django_capture_on_commit_callbacks):
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    subject_erased.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            revoke_consent(subject)
    finally:
        subject_erased.disconnect(receiver)
    assert calls == [{"signal": subject_erased, "subject_id": subject.pk, "key": subject.key,
                      "reason": "consent_revoked"}]


def test_nothing_is_written_when_the_erasure_fails(subject, make_events):
    grant_consent(subject)
    make_events(subject, 2)
    with mock.patch.object(service, "withdraw_events", side_effect=RuntimeError), \
            pytest.raises(RuntimeError):
        revoke_consent(subject)
    assert has_consent(subject) is True
    assert ConsentRecord.objects.count() == 1


def test_grant_returns_state_even_for_fresh_uuid_subject():
    subject = Subject.objects.create(visitor_id=str(uuid.uuid4()))
    state = grant_consent(subject, "analytics", source="api")
    assert (state.purpose, state.granted, state.decided_by, state.source) == (
        "analytics", True, "explicit", "api")
