"""resolve_subject() and merge_subjects()."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.utils import timezone

from personalize.consent.service import grant_consent, has_consent, revoke_consent
from personalize.identity import resolve_subject, visitor_state
from personalize.models import ConsentRecord, Event, Subject
from personalize.signals import event_recorded
from personalize.tracking.merge import merge_subjects, on_user_logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create_user("ann", password="pw")


def test_subject_resolves_to_itself():
    subject = Subject.objects.create()
    assert resolve_subject(subject) is subject


def test_merged_subject_resolves_to_its_target():
    target = Subject.objects.create()
    middle = Subject.objects.create(merged_into=target)
    source = Subject.objects.create(merged_into=middle)
    assert resolve_subject(source) == target


def test_user_gets_a_subject_on_demand(user):
    assert resolve_subject(user, create=False) is None
    subject = resolve_subject(user)
    assert subject.user == user
    assert resolve_subject(user) == subject
    assert Subject.objects.count() == 1


def test_anonymous_user_and_none_have_no_subject():
    assert resolve_subject(AnonymousUser()) is None
    assert resolve_subject(None) is None


def test_other_objects_are_refused():
    with pytest.raises(TypeError, match="not int"):
        resolve_subject(42)


def test_request_without_middleware_cannot_create_anonymous_subject():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert resolve_subject(request) is None
    assert Subject.objects.count() == 0


def test_request_without_middleware_uses_authenticated_user(user):
    request = RequestFactory().get("/")
    request.user = user
    assert resolve_subject(request).user == user


def test_drf_request_is_unwrapped(user):
    from rest_framework.request import Request

    request = RequestFactory().get("/")
    request.user = user
    assert resolve_subject(Request(request)).user == user


def test_state_switches_when_the_user_changes(user):
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    state = visitor_state(request)
    assert state.get() is None
    request.user = user
    assert state.get().user == user


def _record(subject, purpose, granted, when):
    record = ConsentRecord.objects.create(
        subject=subject, purpose=purpose, granted=granted, policy_version="1", source="banner"
    )
    ConsentRecord.objects.filter(pk=record.pk).update(created_at=when)


def test_merge_moves_every_event_once_and_announces_it(user, django_capture_on_commit_callbacks):
    from personalize.models import Item

    item = Item.objects.create(external_id="a")
    source, target = Subject.objects.create(visitor_id="v1"), Subject.objects.create(user=user)
    grant_consent(source)
    grant_consent(target)
    events = [Event.objects.create(subject=source, item=item, event_type="view") for _ in range(3)]
    received = []
    event_recorded.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t-merge")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            moved = merge_subjects(source, target)
    finally:
        event_recorded.disconnect(dispatch_uid="t-merge")
    assert moved == 3
    assert set(Event.objects.filter(subject=target).values_list("pk", flat=True)) == {
        e.pk for e in events
    }
    assert received and received[0]["subject_ids"] == {target.pk}
    assert received[0]["item_ids"] == {item.pk} and received[0]["count"] == 3
    source.refresh_from_db()
    assert source.merged_into == target
    # A second merge (a second login) changes nothing.
    assert merge_subjects(source, target) == 0
    assert Event.objects.filter(subject=target).count() == 3


def test_newer_anonymous_decision_is_carried_to_the_user(user):
    source, target = Subject.objects.create(visitor_id="v1"), Subject.objects.create(user=user)
    now = timezone.now()
    _record(target, "analytics", True, now - timedelta(days=3))
    _record(source, "personalization", True, now - timedelta(days=1))
    _record(source, "analytics", False, now - timedelta(days=1))
    assert not has_consent(target)  # cache the old state: the merge must clear it
    merge_subjects(source, target)
    assert has_consent(target, "personalization")
    assert not has_consent(target, "analytics")
    # The source keeps its own ledger as evidence.
    assert ConsentRecord.objects.filter(subject=source).count() == 2


def test_users_newer_withdrawal_wins_and_anonymous_events_are_not_kept(user, items):
    source, target = Subject.objects.create(visitor_id="v1"), Subject.objects.create(user=user)
    now = timezone.now()
    _record(source, "personalization", True, now - timedelta(days=2))
    Event.objects.create(subject=source, item=items["sku-1"], event_type="view")
    _record(target, "personalization", False, now - timedelta(days=1))
    assert merge_subjects(source, target) == 0
    assert Event.objects.count() == 0
    assert not has_consent(target)
    assert ConsentRecord.objects.filter(subject=target).count() == 1


def test_opt_in_default_applies_when_nobody_decided(user, items, settings):
    source, target = Subject.objects.create(visitor_id="v1"), Subject.objects.create(user=user)
    Event.objects.create(subject=source, item=items["sku-1"], event_type="view")
    assert merge_subjects(source, target) == 0
    assert Event.objects.count() == 0
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CONSENT_MODE": "opt-out"}
    source2 = Subject.objects.create(visitor_id="v2")
    Event.objects.create(subject=source2, item=items["sku-1"], event_type="view")
    assert merge_subjects(source2, target) == 1


def test_login_receiver_adopts_then_merges(user, items):
    request = RequestFactory().get("/")
    anon = Subject.objects.create(visitor_id="v1")
    grant_consent(anon)
    state = visitor_state(request)
    state._anon_looked_up, state._anon_subject = True, anon
    on_user_logged_in(None, request=request, user=user)
    anon.refresh_from_db()
    assert anon.user == user and anon.visitor_id is None and anon.merged_into is None

    # Second device: another anonymous subject merges into the user's.
    other_request = RequestFactory().get("/")
    other = Subject.objects.create(visitor_id="v2")
    grant_consent(other)
    Event.objects.create(subject=other, item=items["sku-2"], event_type="view")
    state = visitor_state(other_request)
    state._anon_looked_up, state._anon_subject = True, other
    on_user_logged_in(None, request=other_request, user=user)
    other.refresh_from_db()
    assert other.merged_into == anon
    assert Event.objects.get().subject == anon


def test_revoked_merged_state_goes_through_the_ledger(user):
    source, target = Subject.objects.create(visitor_id="v1"), Subject.objects.create(user=user)
    grant_consent(target)
    revoke_consent(source)
    merge_subjects(source, target)
    assert not has_consent(target)
