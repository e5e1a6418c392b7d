"""Erasure takes a subject's exposures, assignments and outcomes; rollups keep counts only."""

from __future__ import annotations

import pytest

from personalize.backends.cache import list_keys, personalize_cache
from personalize.consent.cache import consent_cache_key
from personalize.consent.rights import erase_subject
from personalize.consent.service import grant_consent, has_consent, revoke_consent
from personalize.models import (
    Assignment,
    DailyRollup,
    Exposure,
    Subject,
    SubjectOutcome,
)
from personalize.outcomes.exposures import exposures as exposure_buffer
from personalize.outcomes.rollup import run_rollup
from personalize.outcomes.subjects import update_outcomes
from tests.consent.test_rights import keys_referencing, rows_referencing

pytestmark = pytest.mark.django_db


@pytest.fixture
def buffer(monkeypatch):
    """The subjects whose buffered exposures the erasure asked the buffer to drop."""
    forgotten = []
    monkeypatch.setattr(exposure_buffer, "discard_subject", forgotten.append)
    return forgotten


@pytest.fixture
def participant(shop, clock):
    """A signed-in subject with an anonymous one merged into it, both in an experiment."""
    experiment = shop.experiment("a", "b")
    a, b = experiment.variants.order_by("id")
    subject, earlier = shop.subject(), shop.subject()
    Subject.objects.filter(pk=earlier.pk).update(merged_into=subject)
    for who, variant in ((subject, a), (earlier, b)):
        grant_consent(who, "analytics")
        shop.assign(who, variant)
        block = shop.show(who, 0, [0, 1], variant=variant)
        shop.click(who, block, 1, 1)
    update_outcomes(None)
    run_rollup()
    has_consent(subject, "analytics")               # a cached consent state to erase
    return subject, earlier


def test_erasure_removes_exposures_assignments_outcomes_and_cache_keys(
        participant, django_capture_on_commit_callbacks):
    subject, earlier = participant
    ids = [subject.pk, earlier.pk]
    assert Exposure.objects.filter(subject_id__in=ids).count() == 2
    assert Assignment.objects.filter(subject_id__in=ids).count() == 2
    assert SubjectOutcome.objects.filter(subject_id__in=ids).count() == 2
    rollups = list(DailyRollup.objects.values_list("impressions", "subjects", "clicks"))
    secrets = [subject.key, earlier.key]
    with django_capture_on_commit_callbacks(execute=True):
        report = erase_subject(subject)
    assert report.deleted["personalize.Exposure"] == 2
    assert report.deleted["personalize.Assignment"] == 2
    assert report.deleted["personalize.SubjectOutcome"] == 2
    assert rows_referencing(ids) == {}
    if list_keys(["*"]) is None:
        # Django's own caches cannot list keys: what erasure knows goes, the rest is
        # made unreadable by its owner (tests/consent/test_rights.py)
        assert personalize_cache().get(consent_cache_key(subject.pk)) is None
    else:
        assert keys_referencing(ids, secrets) == []
    # the rollups hold counts, never a subject: they stay until a rebuild
    assert list(DailyRollup.objects.values_list("impressions", "subjects", "clicks")) == rollups


def test_erasure_drops_the_subjects_buffered_exposures(
        participant, buffer, django_capture_on_commit_callbacks):
    subject, earlier = participant
    with django_capture_on_commit_callbacks(execute=True):
        erase_subject(subject)
    assert sorted(buffer) == sorted([subject.pk, earlier.pk])


def test_withdrawing_personalization_keeps_exposures(
        participant, buffer, django_capture_on_commit_callbacks):
    subject, _ = participant
    grant_consent(subject, "personalization")
    with django_capture_on_commit_callbacks(execute=True):
        revoke_consent(subject, "personalization")
    assert buffer == []
    assert Exposure.objects.filter(subject=subject).count() == 1


def test_a_failing_buffer_never_fails_the_erasure(participant, monkeypatch, caplog,
                                                  django_capture_on_commit_callbacks):
    subject, _ = participant

    def broken(subject_id):
        raise RuntimeError("buffer gone")

    monkeypatch.setattr(exposure_buffer, "discard_subject", broken)
    with django_capture_on_commit_callbacks(execute=True):
        erase_subject(subject)
    assert "Could not drop the buffered exposures" in caplog.text
    assert not Subject.objects.filter(pk=subject.pk).exists()
