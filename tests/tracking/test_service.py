"""track(): consent gating, bots, items of every kind, idempotency, signals."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from personalize import track as public_track
from personalize.consent.service import grant_consent, revoke_consent
from personalize.identity import STATE_ATTR, VisitorState
from personalize.models import Event, Item, Subject
from personalize.models.events import EventSource
from personalize.signals import event_recorded
from personalize.tracking.service import InvalidEvent, track
from tests.testapp.models import Product
from tests.tracking.conftest import BOT_UA, BROWSER_UA

pytestmark = pytest.mark.django_db


@pytest.fixture
def subject():
    subject = Subject.objects.create()
    grant_consent(subject)
    return subject


def browser_request(ua=BROWSER_UA, **headers):
    request = RequestFactory().get("/", HTTP_USER_AGENT=ua, **headers)
    request.user = AnonymousUser()
    setattr(request, STATE_ATTR, VisitorState(request))  # as VisitorMiddleware does
    return request


def test_public_api_is_this_function():
    assert public_track is track


def test_tracks_with_an_item(subject, items):
    event = track(subject, "view", items["sku-1"], placement="home", position=2)
    stored = Event.objects.get()
    assert event.pk == stored.pk
    assert (stored.subject, stored.item, stored.event_type) == (subject, items["sku-1"], "view")
    assert stored.context == {"placement": "home", "position": 2}
    assert stored.source == EventSource.SERVER


def test_a_server_side_click_names_the_block_it_came_from(subject, items):
    impression = uuid.uuid4()
    track(browser_request(), "view", items["sku-1"])  # (nobody: no subject, nothing stored)
    event = track(subject, "click", item=items["sku-1"], impression=impression, position=3,
                  placement="home")
    assert Event.objects.get(pk=event.pk).context == {
        "impression": str(impression), "position": 3, "placement": "home"}
    with pytest.raises(InvalidEvent) as raised:
        track(subject, "click", item=items["sku-1"], impression="block-7")
    assert raised.value.field == "context.impression"


def test_tracks_with_an_external_id_and_a_host_object(subject, items):
    assert track(subject, "click", "sku-2").item == items["sku-2"]
    product = Product.objects.create(name="Lamp")  # mirrored by the catalog signal
    mirrored = Item.objects.get(object_id=str(product.pk))
    assert track(subject, "purchase", product).item_id == mirrored.pk
    # A host object whose mirror is missing gets one.
    mirrored.delete()
    event = track(subject, "view", product)
    assert Item.objects.get(pk=event.item_id).object_id == str(product.pk)


def test_rating_value_and_page_events_without_item(subject, items):
    assert track(subject, "rating", items["sku-1"], 4.5).value == 4.5
    assert track(subject, "search", q="lamp").item is None


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("teleport", "sku-1"), {}, "type"),
        (("rating", "sku-1", 9), {}, "value"),
        (("view",), {}, "item"),
        (("view", "nope"), {}, "item"),
        (("view", 1.5), {}, "item"),
        (("view", "sku-1"), {"event_id": "x"}, "event_id"),
        (("view", "sku-1"), {"nested": {"a": 1}}, "context"),
        (("view", "sku-1"), {"timestamp": "2999-01-01T00:00:00Z"}, "timestamp"),
    ],
)
def test_invalid_events_raise(subject, items, args, kwargs, field):
    with pytest.raises(InvalidEvent) as info:
        track(subject, *args, **kwargs)
    assert info.value.field == field
    assert Event.objects.count() == 0


def test_non_catalog_model_is_refused(subject):
    user = get_user_model().objects.create_user("ann")
    with pytest.raises(InvalidEvent, match="not a catalog model"):
        track(subject, "view", user)


def test_unknown_items_created_when_allowed(subject, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CREATE_UNKNOWN_ITEMS": True}
    event = track(subject, "view", "new-sku")
    assert Item.objects.get(external_id="new-sku").pk == event.item_id


def test_same_event_id_is_stored_once(subject, items):
    uid = uuid.uuid4()
    assert track(subject, "view", "sku-1", event_id=uid) is not None
    assert track(subject, "view", "sku-1", event_id=str(uid)) is None
    assert Event.objects.filter(event_id=uid).count() == 1


def test_opt_in_without_consent_stores_nothing(items):
    subject = Subject.objects.create()
    assert track(subject, "view", "sku-1") is None
    assert Event.objects.count() == 0


def test_opt_in_new_visitor_gets_no_subject_and_no_cookie(items):
    request = browser_request()
    assert track(request, "view", "sku-1") is None
    assert Subject.objects.count() == 0
    assert getattr(request, STATE_ATTR).cookie_action is None


def test_revoked_consent_stops_tracking(subject, items):
    revoke_consent(subject)
    assert track(subject, "view", "sku-1") is None
    assert Event.objects.count() == 0


def test_opt_out_tracks_new_visitor_and_creates_subject(items, opt_out):
    request = browser_request()
    event = track(request, "view", "sku-1")
    assert event is not None
    subject = Subject.objects.get()
    assert event.subject_id == subject.pk
    assert getattr(request, STATE_ATTR).cookie_action == subject.visitor_id


@pytest.mark.parametrize("header", [{"HTTP_SEC_GPC": "1"}, {"HTTP_DNT": "1"}])
def test_gpc_and_dnt_withdraw(items, opt_out, header):
    request = browser_request(**header)
    assert track(request, "view", "sku-1") is None
    assert Subject.objects.count() == 0
    # ... also for a visitor who granted consent explicitly.
    subject = Subject.objects.create()
    grant_consent(subject)
    request.user = get_user_model().objects.create_user("bob")
    subject.user = request.user
    subject.save()
    assert track(request, "view", "sku-1") is None
    assert Event.objects.count() == 0


def test_gpc_can_be_ignored_by_setting(items, settings):
    settings.PERSONALIZE = {
        **settings.PERSONALIZE, "CONSENT_MODE": "opt-out", "HONOR_GPC": False,
    }
    assert track(browser_request(HTTP_SEC_GPC="1"), "view", "sku-1") is not None


def test_bots_are_not_recorded(items, opt_out):
    assert track(browser_request(ua=BOT_UA), "view", "sku-1") is None
    assert Subject.objects.count() == 0 and Event.objects.count() == 0


def test_signed_in_user_tracked_through_request(items):
    user = get_user_model().objects.create_user("ann")
    grant_consent(user)
    request = browser_request()
    request.user = user
    assert track(request, "view", "sku-1").subject == Subject.objects.get(user=user)


def test_event_recorded_after_commit(subject, items, django_capture_on_commit_callbacks):
    received = []
    event_recorded.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="t-track")
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            track(subject, "view", items["sku-3"])
        assert received == []
        for callback in callbacks:
            callback()
    finally:
        event_recorded.disconnect(dispatch_uid="t-track")
    assert received[0]["subject_ids"] == {subject.pk}
    assert received[0]["item_ids"] == {items["sku-3"].pk}
    assert received[0]["count"] == 1


def test_few_queries_per_event(subject, items):
    track(subject, "view", items["sku-1"])  # warm the consent cache
    with CaptureQueriesContext(connection) as queries:
        track(subject, "view", items["sku-1"])
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    # The subject's row lock, its ledger (the cache may not show a withdrawal that
    # committed a moment ago), and the INSERT.
    assert len(statements) == 3
    assert "personalize_subject" in statements[0]  # FOR KEY SHARE where there are row locks
    assert "personalize_consentrecord" in statements[1]
    assert statements[2].startswith("INSERT")


def test_a_withdrawal_the_cache_does_not_show_yet_is_honoured(subject, items):
    """The cached answer may predate a withdrawal that just committed; the ledger decides."""
    from unittest import mock

    with mock.patch("personalize.tracking.service.personalization_allowed", return_value=True):
        revoke_consent(subject)
        assert track(subject, "view", items["sku-1"]) is None
    assert Event.objects.count() == 0


def test_consent_failure_fails_closed(subject, items):
    from unittest import mock

    with mock.patch("personalize.tracking.consent_gate.has_consent", side_effect=RuntimeError("x")):
        assert track(subject, "view", "sku-1") is None
    assert Event.objects.count() == 0


# --- a visitor's later requests: resolved anew each time ---------------------------------


def visitor_request(visitor_id):
    """A browser request carrying ``visitor_id`` in a validly signed visitor cookie."""
    from django.http import HttpResponse

    from personalize.identity import COOKIE_SALT

    signed = HttpResponse()
    signed.set_signed_cookie("personalize_vid", visitor_id, salt=COOKIE_SALT)
    request = browser_request()
    request.COOKIES["personalize_vid"] = signed.cookies["personalize_vid"].value
    setattr(request, STATE_ATTR, VisitorState(request))
    return request


@pytest.mark.django_db
def test_remembered_consent_is_still_read_every_time(items):
    subject = Subject.objects.create(visitor_id="v-1")
    grant_consent(subject)
    assert track(visitor_request("v-1"), "view", "sku-1") is not None
    revoke_consent(subject)
    assert track(visitor_request("v-1"), "view", "sku-2") is None
    assert not Event.objects.filter(item=items["sku-2"]).exists()


@pytest.mark.django_db
def test_a_visitor_merged_at_sign_in_is_resolved_again(items, opt_out):
    from personalize.tracking.merge import merge_subjects

    anonymous = Subject.objects.create(visitor_id="v-1")
    assert track(visitor_request("v-1"), "view", "sku-1").subject_id == anonymous.pk
    user_subject = Subject.objects.create(user=get_user_model().objects.create_user("ann"))
    merge_subjects(anonymous, user_subject)

    event = track(visitor_request("v-1"), "view", "sku-2")
    # The old cookie no longer names anyone: a new anonymous subject, unlinkable.
    assert event.subject_id not in (anonymous.pk, user_subject.pk)
    assert Subject.objects.get(pk=event.subject_id).visitor_id != "v-1"


@pytest.mark.django_db
def test_an_erased_visitor_gets_a_new_subject(items, opt_out):
    from personalize.consent.rights import erase_subject

    subject = Subject.objects.create(visitor_id="v-1")
    assert track(visitor_request("v-1"), "view", "sku-1").subject_id == subject.pk
    erase_subject(subject)

    event = track(visitor_request("v-1"), "view", "sku-2")
    assert event is not None and event.subject_id != subject.pk
    assert not Subject.objects.filter(pk=subject.pk).exists()
    assert Event.objects.get().subject_id == event.subject_id
