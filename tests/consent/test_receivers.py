"""Deleting a user account is an erasure of the account's subject, not only a cascade."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from personalize.models import Event, Subject
from personalize.serving.service import recommend
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import grant, make_model
from tests.test_admin_subjects import EXPLANATION, assert_erased, cached, erased_signals  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper(catalog_items, active_models):
    """A signed-in shopper who viewed Book 1, with a cached block and a merged old browser."""
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [c["b3"].pk, c["b2"].pk, c["t1"].pk])
    user = get_user_model().objects.create_user("ann", password="x")
    subject = Subject.objects.create(user=user)
    old_browser = Subject.objects.create(visitor_id="v-ann-old", merged_into=subject)
    grant(subject)
    Event.objects.create(subject=subject, item=c["b1"], event_type="view")
    Event.objects.create(subject=old_browser, item=c["b2"], event_type="view")
    assert recommend(subject, "home", limit=2)[0].explanation == EXPLANATION  # cached now
    return user, subject, old_browser


def test_deleting_a_user_erases_their_subject(shopper, erased_signals,  # noqa: F811
                                              django_capture_on_commit_callbacks):
    user, subject, old_browser = shopper
    assert len(cached(subject)) >= 1
    with django_capture_on_commit_callbacks(execute=True):
        user.delete()
    assert_erased(subject)
    assert_erased(old_browser)
    assert sorted(pk for pk, _, _ in erased_signals) == sorted([subject.pk, old_browser.pk])
    assert {reason for _, _, reason in erased_signals} == {"erasure"}


def test_other_subjects_and_users_without_a_subject_are_untouched(shopper, erased_signals):  # noqa: F811
    _, subject, _ = shopper
    bob = Subject.objects.create(visitor_id="v-bob")
    nobody = get_user_model().objects.create_user("nobody", password="x")
    nobody.delete()
    assert Subject.objects.filter(pk__in=[subject.pk, bob.pk]).count() == 2
    assert erased_signals == []
