"""Deleting subjects in the admin is an erasure: rows, cache keys and loaded models.

Runs on both passes: on Redis (the services pass) no key that names the subject
may remain; on the local-memory cache, which cannot list its keys, the keys
erasure knows must be gone and the subject's blocks unreadable.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from personalize.backends.cache import list_keys, personalize_cache
from personalize.consent.cache import consent_cache_key
from personalize.consent.service import has_consent
from personalize.models import Event, Subject
from personalize.serving.service import recommend
from personalize.signals import subject_erased
from tests.consent.test_rights import keys_referencing
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import grant, make_model

pytestmark = pytest.mark.django_db

EXPLANATION = "Because you viewed Book 1"


@pytest.fixture
def erased_signals():
    received: list[tuple[int, str, str]] = []

    def receiver(sender, subject_id, key, reason, **kwargs):
        received.append((subject_id, key, reason))

    subject_erased.connect(receiver, dispatch_uid="test-admin-erasure")
    yield received
    subject_erased.disconnect(dispatch_uid="test-admin-erasure")


def personalized(visitor_id: str, catalog_items, merged_into: Subject | None = None) -> Subject:
    """A subject who viewed Book 1, with consent, a cached block and cached consent state."""
    subject = Subject.objects.create(visitor_id=visitor_id, merged_into=merged_into)
    grant(subject)
    Event.objects.create(subject=subject, item=catalog_items["b1"], event_type="view")
    if merged_into is None:
        recs = recommend(subject, "home", limit=2)  # computes and caches the block
        assert recs[0].explanation == EXPLANATION
        assert has_consent(subject)  # caches the consent state
    return subject


@pytest.fixture
def people(catalog_items, active_models):
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [c["b3"].pk, c["b2"].pk, c["t1"].pk])
    ann = personalized("v-ann", catalog_items)
    ann_old_browser = personalized("v-ann-old", catalog_items, merged_into=ann)
    bob = personalized("v-bob", catalog_items)
    cal = personalized("v-cal", catalog_items)
    return ann, ann_old_browser, bob, cal


def cached(subject: Subject) -> list[str]:
    """Cache keys that name the subject (its pk token or its pseudonymous key)."""
    return keys_referencing([subject.pk], [subject.key])


def assert_erased(subject: Subject) -> None:
    assert not Subject.objects.filter(pk=subject.pk).exists()
    assert not Event.objects.filter(subject_id=subject.pk).exists()
    assert personalize_cache().get(consent_cache_key(subject.pk)) is None
    if list_keys(["*"]) is not None:  # Redis: no key names the subject any more
        assert cached(subject) == []


def test_deleting_one_subject_erases_it(admin_client, people, erased_signals,
                                        django_capture_on_commit_callbacks):
    ann, ann_old_browser, bob, _ = people
    assert len(cached(ann)) >= 2  # the block and the consent state are cached
    url = reverse("admin:personalize_subject_delete", args=[ann.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"post": "yes"}, follow=True)

    assert response.status_code == 200
    assert_erased(ann)
    assert_erased(ann_old_browser)
    assert sorted(erased_signals) == sorted([(ann.pk, ann.key, "erasure"),
                                             (ann_old_browser.pk, ann_old_browser.key,
                                              "erasure")])
    assert f"Erased visitor subject {ann.key}" in response.content.decode()
    # Nobody else lost anything.
    assert Event.objects.filter(subject=bob).count() == 1
    assert has_consent(bob)
    assert recommend(bob, "home", limit=1)[0].explanation == EXPLANATION


def test_deleting_selected_subjects_erases_each(admin_client, people, erased_signals,
                                                django_capture_on_commit_callbacks):
    ann, ann_old_browser, bob, cal = people
    changelist = reverse("admin:personalize_subject_changelist")
    chosen = [ann.pk, ann_old_browser.pk, bob.pk]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(changelist, {"action": "delete_selected", "post": "yes",
                                                  ACTION_CHECKBOX_NAME: chosen}, follow=True)

    assert response.status_code == 200
    for subject in (ann, ann_old_browser, bob):
        assert_erased(subject)
    # Each subject is erased (and announced) once, the merged one with its survivor.
    assert sorted(erased_signals) == sorted(
        [(s.pk, s.key, "erasure") for s in (ann, ann_old_browser, bob)])
    assert "Erased 3 subjects" in response.content.decode()
    assert Subject.objects.filter(pk=cal.pk).exists()
    assert recommend(cal, "home", limit=1)[0].explanation == EXPLANATION


def test_the_screens_say_deleting_is_an_erasure(admin_client, people):
    ann, _, bob, _ = people
    changelist = reverse("admin:personalize_subject_changelist")
    assert "Erase selected subjects" in admin_client.get(changelist).content.decode()
    one = admin_client.get(reverse("admin:personalize_subject_delete", args=[ann.pk]))
    many = admin_client.post(changelist, {"action": "delete_selected",
                                          ACTION_CHECKBOX_NAME: [ann.pk, bob.pk]})
    for page in (one.content.decode(), many.content.decode()):
        assert "This is an erasure" in page
        assert "cached recommendations" in page
    assert Subject.objects.filter(pk__in=[ann.pk, bob.pk]).count() == 2  # only asked
