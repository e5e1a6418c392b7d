"""Export and erasure: everything held about a subject, and nothing left afterwards."""

from __future__ import annotations

import json
import re

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models

from personalize.backends.cache import list_keys, personalize_cache
from personalize.consent.cache import consent_cache_key
from personalize.consent.rights import (
    ErasureReport,
    empty_export,
    erase_subject,
    erase_subjects,
    export_profile,
    export_subject,
    subject_relations,
)
from personalize.consent.service import grant_consent, has_consent, revoke_consent
from personalize.models import ConsentRecord, Event, Subject
from personalize.serving.precompute import topn_key
from personalize.signals import subject_erased

pytestmark = pytest.mark.django_db


# --- helpers that inspect storage independently of the code under test ---------------


def raw_cache_keys() -> list[str]:
    """Every key in the personalize cache, as stored by the backend."""
    cache = personalize_cache()
    if hasattr(cache, "_cache") and hasattr(cache, "_lock"):  # locmem
        return [str(k) for k in cache._cache]
    client = cache.client.get_client()  # django-redis: scan this test run's prefix
    prefix = cache.key_prefix
    return [k.decode() for k in client.scan_iter(match=f"{prefix}*", count=1000)]


def keys_referencing(subject_ids, secrets) -> list[str]:
    pattern = re.compile(
        r"subject:(" + "|".join(str(pk) for pk in subject_ids) + r")(:|$)"
    )
    return [k for k in raw_cache_keys()
            if pattern.search(k) or any(s and s in k for s in secrets)]


def rows_referencing(subject_ids) -> dict[str, int]:
    """Rows of any installed model whose foreign key points at one of the subjects."""
    found = {}
    for model in apps.get_models(include_auto_created=True):
        for f in model._meta.get_fields():
            if f.concrete and (f.many_to_one or f.one_to_one) and f.related_model is Subject:
                n = model._default_manager.filter(**{f"{f.name}__in": subject_ids}).count()
                if n:
                    found[f"{model._meta.label}.{f.name}"] = n
    n = Subject.objects.filter(pk__in=subject_ids).count()
    if n:
        found["personalize.Subject.pk"] = n
    return found


def text_columns_mentioning(secret) -> list[str]:
    """personalize rows whose text columns contain the subject's key or visitor id."""
    hits = []
    for model in apps.get_app_config("personalize").get_models():
        for f in model._meta.concrete_fields:
            if isinstance(f, models.CharField | models.TextField) and \
                    model._default_manager.filter(**{f"{f.name}__contains": secret}).exists():
                hits.append(f"{model._meta.label}.{f.name}")
    return hits


@pytest.fixture
def person(items, make_events):
    """A signed-in user with an anonymous past (merged), events, consent and cached data."""
    user = get_user_model().objects.create_user("ada", password="x")
    subject = Subject.objects.create(user=user)
    grant_consent(subject, source="banner")
    revoke_consent(subject, "analytics", source="api")
    make_events(subject, 4)
    anon = Subject.objects.create(visitor_id="old-browser", merged_into=subject)
    grant_consent(anon, source="banner")  # recorded on the survivor (merged subjects resolve)
    ConsentRecord.objects.create(subject=anon, purpose="analytics", granted=True,
                                 policy_version="0", source="banner")
    Event.objects.create(subject=anon, item=items[0], event_type="purchase")
    return subject, anon


def seed_cache(subject, anon, bystander):
    cache = personalize_cache()
    assert has_consent(subject) is True  # caches the consent state
    assert has_consent(anon.pk) is False
    cache.set(f"personalize:rec:subject:{subject.pk}:home:v3", [[1, 0.9], [2, 0.5]])
    cache.set(f"personalize:rl:subject:{anon.pk}", 7)
    cache.set(f"personalize:vec:{subject.key}", [0.1, 0.2])
    # A precomputed top-N list (personalize.training.precompute) names the subject too.
    cache.set(topn_key("ease", subject.pk), {"version": 1, "items": [[1, 0.9]]})
    cache.set(f"personalize:rec:subject:{bystander.pk}:home:v3", [[3, 0.1]])
    cache.set("personalize:popular:home", [1, 2, 3])


# --- export ----------------------------------------------------------------------------


def test_export_holds_everything(person, items):
    subject, anon = person
    personalize_cache().set(f"personalize:rec:subject:{subject.pk}:home", {"items": ["item-a"]})

    def profile_receiver(sender, subject, subject_ids, **kwargs):
        return {"embeddings": {"has_vector": True, "subjects": sorted(subject_ids)}}

    export_profile.connect(profile_receiver)
    try:
        data = export_subject(subject)
    finally:
        export_profile.disconnect(profile_receiver)

    json.dumps(data)  # JSON-serialisable as is
    assert data["format_version"] == 1
    assert data["subject"]["key"] == subject.key
    assert data["subject"]["kind"] == "user"
    assert data["subject"]["created_at"] == subject.created_at.isoformat()
    assert [m["key"] for m in data["merged_subjects"]] == [anon.key]
    assert data["merged_subjects"][0]["kind"] == "visitor"

    assert len(data["events"]) == 5
    assert {e["item"] for e in data["events"]} == {i.external_id for i in items}
    event = next(e for e in data["events"] if e["event_type"] == "view")
    assert set(event) >= {"event_id", "event_type", "item", "value", "context", "timestamp",
                          "source"}
    assert event["context"] == {"q": "secret phrase"}

    ledger = data["consent"]["ledger"]
    assert [(r["purpose"], r["granted"], r["policy_version"]) for r in ledger] == [
        ("personalization", True, "1"), ("analytics", False, "1"),
        ("personalization", True, "1"), ("analytics", True, "0"),
    ]
    current = data["consent"]["current"]
    assert current["personalization"]["granted"] is True
    assert current["analytics"]["granted"] is False

    profile = data["profile"]
    assert profile["history"]["events"] == 5
    assert profile["history"]["by_type"] == {"view": 4, "purchase": 1}
    assert profile["history"]["top_categories"] == ["books"]
    assert len(profile["history"]["recent_items"]) == 3
    if list_keys(["*"]) is None:  # a cache that cannot list its keys exports none
        assert profile["cached"] == {}
    else:
        # (Other code may cache more about the subject, e.g. serving's generation keys.)
        assert profile["cached"][f"personalize:rec:subject:{subject.pk}:home"] == {
            "items": ["item-a"]}
        assert all(f"subject:{subject.pk}" in k or f"subject:{anon.pk}" in k
                   for k in profile["cached"])
    assert profile["embeddings"] == {"has_vector": True,
                                     "subjects": sorted([subject.pk, anon.pk])}
    assert data["other"] == {}


def test_export_leaves_out_other_subjects(person, make_events):
    subject, _ = person
    other = Subject.objects.create()
    make_events(other, 3)
    grant_consent(other)
    data = export_subject(subject)
    assert len(data["events"]) == 5
    assert len(data["consent"]["ledger"]) == 4


def test_empty_export_for_a_stranger():
    data = empty_export()
    json.dumps(data)
    assert data["subject"] is None and data["events"] == []
    assert data["consent"]["current"]["personalization"]["granted"] is False


# --- erasure ------------------------------------------------------------------------------


def test_relations_are_found_generically():
    labels = {(m._meta.label, name) for m, name in subject_relations()}
    assert {("personalize.Event", "subject"), ("personalize.ConsentRecord", "subject"),
            ("personalize.Subject", "merged_into")} <= labels


def test_erasure_leaves_no_row_and_no_cache_key(person, make_events,
                                                django_capture_on_commit_callbacks):
    subject, anon = person
    bystander = Subject.objects.create(visitor_id="bystander")
    make_events(bystander, 2)
    grant_consent(bystander)
    seed_cache(subject, anon, bystander)
    ids, secrets = [subject.pk, anon.pk], [subject.key, anon.key, "old-browser"]
    assert rows_referencing(ids)
    seeded = len(keys_referencing(ids, secrets))
    assert seeded >= 5  # ours, plus whatever serving's receivers keep per subject
    user_id = subject.user_id

    def careless_receiver(sender, subject_id, **kwargs):
        # Like a serving cache bumping the subject's generation on erasure.
        personalize_cache().set(f"personalize:rec:gen:subject:{subject_id}", "new")

    subject_erased.connect(careless_receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            report = erase_subject(subject)
    finally:
        subject_erased.disconnect(careless_receiver)

    assert rows_referencing(ids) == {}
    for secret in secrets:
        assert text_columns_mentioning(secret) == []
    if list_keys(["*"]) is None:
        # Django's own caches cannot list keys: what erasure knows goes; what others
        # cached for the subject is made unreadable by its owner (serving moves the
        # subject's generation) and expires
        assert personalize_cache().get(consent_cache_key(subject.pk)) is None
    else:
        assert keys_referencing(ids, secrets) == []
    # Nobody else lost anything.
    assert personalize_cache().get("personalize:popular:home") == [1, 2, 3]
    assert personalize_cache().get(f"personalize:rec:subject:{bystander.pk}:home:v3") == [[3, 0.1]]
    assert Event.objects.filter(subject=bystander).count() == 2
    assert has_consent(bystander) is True
    assert get_user_model().objects.filter(pk=user_id).exists(), "the account is the site's"

    assert isinstance(report, ErasureReport)
    assert report.deleted == {"personalize.Event": 5, "personalize.ConsentRecord": 4,
                              "personalize.Subject": 2}
    assert report.rows == 11
    if list_keys(["*"]) is not None:
        assert report.cache_keys >= seeded
    assert sorted(report.subject_ids) == sorted(ids)
    assert str(report).startswith(f"Erased user subject {subject.key}: 4 personalize.")
    json.dumps(report.as_dict())


def test_erasure_tells_serving_to_forget_each_subject(person,
                                                      django_capture_on_commit_callbacks):
    subject, anon = person
    calls = []

    def receiver(sender, **kwargs):
        calls.append((kwargs["subject_id"], kwargs["key"], kwargs["reason"]))

    subject_erased.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            erase_subject(subject)
        assert calls == [], "sent only after the transaction commits"
        for callback in callbacks:
            callback()
    finally:
        subject_erased.disconnect(receiver)
    assert sorted(calls) == sorted([(subject.pk, subject.key, "erasure"),
                                    (anon.pk, anon.key, "erasure")])


def test_consent_cache_recached_before_commit_is_dropped_after(
        person, django_capture_on_commit_callbacks):
    subject, _ = person
    with django_capture_on_commit_callbacks(execute=True):
        erase_subject(subject)
        # A concurrent reader re-caches the state before the commit...
        personalize_cache().set(consent_cache_key(subject.pk), {"personalization": None})
    # ...and the after-commit sweep removes it again.
    assert personalize_cache().get(consent_cache_key(subject.pk)) is None


def test_erasing_a_merged_source_keeps_the_survivor(person):
    subject, anon = person
    erase_subject(anon)
    assert not Subject.objects.filter(pk=anon.pk).exists()
    assert Subject.objects.filter(pk=subject.pk).exists()
    assert Event.objects.filter(subject=subject).count() == 4


def test_erasing_several_erases_each_tree_once(person, django_capture_on_commit_callbacks):
    subject, anon = person
    alone = Subject.objects.create(visitor_id="alone")
    gone = Subject.objects.create(visitor_id="gone")
    Subject.objects.filter(pk=gone.pk).delete()  # erased meanwhile
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs["subject_id"])

    subject_erased.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            reports = erase_subjects([anon, alone, subject, gone, subject])
    finally:
        subject_erased.disconnect(receiver)
    # The merged subject went with its survivor, whatever the order given.
    assert [sorted(r.subject_ids) for r in reports] == [sorted([subject.pk, anon.pk]),
                                                         [alone.pk]]
    assert sorted(calls) == sorted([subject.pk, anon.pk, alone.pk])
    assert not Subject.objects.exists()
