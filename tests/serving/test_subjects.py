"""Remembering which subject a request stands for, and forgetting it when it goes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.signing import get_cookie_signer
from django.test import RequestFactory

from personalize.conf import personalize_settings
from personalize.models import Event, Subject
from personalize.serving import subjects
from personalize.serving.service import recommend
from personalize.signals import subject_erased
from personalize.tracking.subjects import COOKIE_SALT
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import grant, make_model

pytestmark = pytest.mark.django_db


def user_request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def visitor_request(visitor_id: str):
    name = personalize_settings.VISITOR_COOKIE_NAME
    request = RequestFactory().get("/")
    request.COOKIES[name] = get_cookie_signer(salt=name + COOKIE_SALT).sign(visitor_id)
    request.user = AnonymousUser()
    return request


@pytest.fixture
def shopper(catalog_items, active_models):
    user = User.objects.create_user("shopper")
    subject = Subject.objects.create(user=user)
    grant(subject)
    Event.objects.create(subject=subject, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b2"].pk])
    return user, subject


def test_a_cache_hit_for_a_request_runs_no_query(shopper, django_assert_num_queries):
    user, subject = shopper
    first = recommend(user_request(user), "home", limit=2)
    assert first[0].personalized
    with django_assert_num_queries(0):
        again = recommend(user_request(user), "home", limit=2)
    assert [r.item.pk for r in again] == [r.item.pk for r in first]
    assert subjects.subject_id_for(user_request(user)) == (subject.pk, True)


def test_subject_instances_and_users_are_not_remembered(shopper):
    user, subject = shopper
    assert subjects.subject_id_for(subject) == (subject.pk, False)
    assert subjects.subject_id_for(user) == (subject.pk, False)
    assert subjects.subject_id_for(None) == (None, False)
    assert subjects.subject_id_for(user_request(AnonymousUser())) == (None, False)


def test_visitors_without_a_subject_are_looked_up_again(db, active_models):
    request = visitor_request("v-late")
    assert subjects.subject_id_for(request) == (None, False)
    late = Subject.objects.create(visitor_id="v-late")
    assert subjects.subject_id_for(visitor_request("v-late")) == (late.pk, False)
    assert subjects.subject_id_for(visitor_request("v-late")) == (late.pk, True)


def test_an_erased_subject_is_resolved_again(shopper, catalog_items, active_models):
    user, subject = shopper
    recommend(user_request(user), "home", limit=2)
    old_pk = subject.pk
    Subject.objects.filter(pk=old_pk).delete()  # erasure deletes the row
    subject_erased.send(sender=Subject, subject_id=old_pk, key=subject.key)
    # another process still remembers the old pk
    subjects._users[user.pk] = (old_pk, subjects.time.monotonic())
    newer = Subject.objects.create(user=user)
    grant(newer)
    Event.objects.create(subject=newer, item=catalog_items["t1"], event_type="view")
    recs = recommend(user_request(user), "home", limit=2)
    assert recs[0].personalized and recs[0].explanation == "Because you viewed Tool 1"
    assert subjects.subject_id_for(user_request(user)) == (newer.pk, True)


def test_a_merged_visitor_is_resolved_again(catalog_items, active_models):
    anon = Subject.objects.create(visitor_id="v-merge")
    grant(anon)
    Event.objects.create(subject=anon, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b2"].pk])
    assert recommend(visitor_request("v-merge"), "home", limit=1)[0].personalized
    target = Subject.objects.create(user=User.objects.create_user("u"))
    anon.merged_into, anon.visitor_id = target, None
    anon.save()
    # the visitor id no longer names a live subject: not personalized any more
    assert not recommend(visitor_request("v-merge"), "home", limit=1)[0].personalized
    assert subjects.subject_id_for(visitor_request("v-merge")) == (None, False)


def test_revoked_consent_keeps_the_subject_but_not_the_personalization(
    shopper, django_capture_on_commit_callbacks
):
    from personalize import revoke_consent

    user, subject = shopper
    assert recommend(user_request(user), "home", limit=1)[0].personalized
    with django_capture_on_commit_callbacks(execute=True):
        revoke_consent(subject)
    after = recommend(user_request(user), "home", limit=1)
    assert not after[0].personalized
    assert subjects.subject_id_for(user_request(user)) == (subject.pk, True)
    # the tombstone was replaced by a live generation: the next call is a hit
    assert recommend(user_request(user), "home", limit=1) == after


def test_memory_expires(shopper, monkeypatch):
    user, subject = shopper
    subjects.subject_id_for(user_request(user))
    later = subjects.time.monotonic() + subjects.MEMORY_SECONDS + 1
    monkeypatch.setattr(subjects.time, "monotonic", lambda: later)
    assert subjects.subject_id_for(user_request(user)) == (subject.pk, False)


def test_forget_subject(shopper):
    user, subject = shopper
    subjects.subject_id_for(user_request(user))
    subjects.forget_subject(subject.pk)
    assert subjects.subject_id_for(user_request(user)) == (subject.pk, False)
