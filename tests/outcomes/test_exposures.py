"""Exposures: what is logged for a served block, assignments recorded with them, erasure."""

from __future__ import annotations

import uuid

import pytest

from personalize.backends.cache import personalize_cache
from personalize.consent.rights import erase_subject
from personalize.experiments.assignment import assignment_key
from personalize.models import Assignment, Event, Experiment, Exposure, Subject, Variant
from personalize.outcomes import exposures as exposure_log
from personalize.outcomes.exposures import (
    PendingExposure,
    flush_exposures,
    log_exposure,
    write_exposures,
)
from personalize.serving.service import serve_block
from tests.experiments.factories import grant_analytics, make_experiment, variant
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import grant, make_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper(catalog_items, active_models):
    c = catalog_items
    subject = Subject.objects.create(visitor_id="shopper")
    grant(subject)
    grant_analytics(subject)
    Event.objects.create(subject=subject, item=c["g1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [c["b3"].pk, c["b2"].pk], version=4)
    active_models["ease"] = make_model("ease", [c["t1"].pk, c["t2"].pk], version=7)
    return subject


def only(key: str) -> list[dict]:
    return [{"key": "a", "strategy": "item_knn", "weight": float(key == "a")},
            {"key": "b", "strategy": "ease", "weight": float(key == "b")}]


def test_one_row_per_block_with_its_items_in_order(shopper, catalog_items):
    served = serve_block(shopper, "home", limit=2)
    impression = log_exposure(served, "tag")
    assert isinstance(impression, uuid.UUID)
    row = Exposure.objects.get()
    assert row.id == impression
    assert (row.subject, row.placement, row.strategy, row.model_version, row.source) == (
        shopper, "home", "item_knn", 4, "tag")
    assert row.items == [catalog_items["b3"].pk, catalog_items["b2"].pk]
    assert (row.experiment, row.variant) == (None, None)
    assert log_exposure(served, "api") != impression  # each rendering is its own impression
    assert Exposure.objects.count() == 2


def test_a_replay_dates_its_exposure_with_at(shopper):
    from datetime import timedelta

    from django.utils import timezone

    shown = timezone.now().replace(microsecond=0) - timedelta(days=3, hours=2)
    impression = log_exposure(serve_block(shopper, "home", limit=2), "tag", at=shown)
    assert Exposure.objects.get(pk=impression).created_at == shown
    later = log_exposure(serve_block(shopper, "home", limit=2), "tag")
    assert timezone.now() - Exposure.objects.get(pk=later).created_at < timedelta(minutes=1)


def test_nothing_without_analytics_consent_a_subject_or_items(catalog_items, active_models,
                                                              settings):
    private = Subject.objects.create()
    grant(private)  # personalization, not analytics
    assert log_exposure(serve_block(private, "home", limit=2), "tag") is None
    assert log_exposure(serve_block(None, "home", limit=2), "tag") is None  # no subject
    counted = Subject.objects.create()
    grant_analytics(counted)
    settings.PERSONALIZE = {**settings.PERSONALIZE, "EXPOSURE_LOGGING": False}
    assert log_exposure(serve_block(counted, "home", limit=2), "tag") is None
    assert not Exposure.objects.exists()
    settings.PERSONALIZE = {**settings.PERSONALIZE, "EXPOSURE_LOGGING": True}
    Exposure.objects.all().delete()
    empty = Subject.objects.create()
    grant_analytics(empty)
    assert log_exposure(serve_block(empty, "home", limit=0), "tag") is None  # no items
    assert log_exposure(serve_block(counted, "home", limit=2), "tag") is not None


def test_the_first_exposure_records_the_assignment_which_then_sticks(
        shopper, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        experiment = make_experiment("home", only("b"))
    served = serve_block(shopper, "home", limit=2)
    impression = log_exposure(served, "api")
    b = variant(experiment, "b")
    row = Exposure.objects.get(pk=impression)
    assert (row.experiment_id, row.variant_id, row.strategy, row.model_version) == (
        experiment.pk, b.pk, "ease", 7)
    assert Assignment.objects.get().variant == b
    assert personalize_cache().get(assignment_key(experiment.pk, shopper.pk)) == b.pk
    # everyone new goes to "a" now: the shopper stays in "b"
    with django_capture_on_commit_callbacks(execute=True):
        Variant.objects.filter(pk=b.pk).update(weight=0)
        Variant.objects.filter(experiment=experiment, key="a").update(weight=1)
        experiment.save()  # the edit moves the serving generation
    personalize_cache().delete(assignment_key(experiment.pk, shopper.pk))  # read from the row
    again = serve_block(shopper, "home", limit=2)
    assert again.variant_id == b.pk and again.assignment_recorded
    log_exposure(again, "api")
    assert Assignment.objects.count() == 1 and Exposure.objects.filter(variant=b).count() == 2


def test_a_holdout_is_logged_with_no_items(shopper):
    experiment = make_experiment("home", [
        {"key": "none", "kind": Variant.Kind.HOLDOUT, "weight": 1, "is_control": True},
        {"key": "b", "strategy": "ease", "weight": 0}])
    impression = log_exposure(serve_block(shopper, "home", limit=2), "tag")
    row = Exposure.objects.get(pk=impression)
    assert (row.items, row.strategy, row.variant) == ([], "", variant(experiment, "none"))
    assert Assignment.objects.get().variant == variant(experiment, "none")


def pending(subject_id: int, **fields) -> PendingExposure:
    from django.utils import timezone

    values = {"id": uuid.uuid4(), "subject_id": subject_id, "placement": "home",
              "strategy": "ease", "model_version": 1, "experiment_id": None,
              "variant_id": None, "items": (1, 2), "source": "tag",
              "created_at": timezone.now(), **fields}
    return PendingExposure(**values)


def test_writing_drops_erased_subjects_and_follows_merges(db):
    kept, erased = Subject.objects.create(), Subject.objects.create()
    user_subject = Subject.objects.create()
    merged = Subject.objects.create(merged_into=user_subject)
    experiment = make_experiment("home")
    gone = make_experiment("cart")
    gone_experiment, gone_variant = gone.pk, variant(gone, "b").pk
    gone.delete()
    rows = [pending(kept.pk), pending(erased.pk), pending(merged.pk),
            pending(kept.pk, experiment_id=experiment.pk,
                    variant_id=variant(experiment, "b").pk),
            pending(user_subject.pk, experiment_id=gone_experiment, variant_id=gone_variant)]
    erased.delete()
    write_exposures(rows)
    stored = {row.id: row for row in Exposure.objects.all()}
    assert set(stored) == {rows[0].id, rows[2].id, rows[3].id, rows[4].id}
    assert stored[rows[2].id].subject == user_subject  # merged: the surviving subject's
    assert stored[rows[3].id].variant == variant(experiment, "b")
    assert (stored[rows[4].id].experiment, stored[rows[4].id].variant) == (None, None)
    write_exposures(rows)  # a batch written again stores nothing twice
    assert Exposure.objects.count() == 4
    assert list(Assignment.objects.values_list("subject_id", "variant__key")) == [
        (kept.pk, "b")]


def test_an_erased_subjects_buffered_exposures_are_dropped(
        shopper, settings, django_capture_on_commit_callbacks):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "EXPOSURE_FLUSH_INTERVAL": 3600}
    other = Subject.objects.create()
    grant_analytics(other)
    try:
        log_exposure(serve_block(shopper, "home", limit=2), "tag")
        log_exposure(serve_block(other, "home", limit=2), "tag")
        assert len(exposure_log.exposures) == 2 and not Exposure.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):  # subject_erased, after commit
            erase_subject(shopper)
        assert len(exposure_log.exposures) == 1  # the subject_erased signal dropped its row
    finally:
        exposure_log.exposures.close()
    assert list(Exposure.objects.values_list("subject_id", flat=True)) == [other.pk]
    assert flush_exposures() and len(exposure_log.exposures) == 0


def test_a_stopped_experiment_stops_enrolling(shopper, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        experiment = make_experiment("home", only("b"))
    log_exposure(serve_block(shopper, "home", limit=2), "tag")
    with django_capture_on_commit_callbacks(execute=True):
        experiment.status = Experiment.Status.STOPPED
        experiment.save()
    impression = log_exposure(serve_block(shopper, "home", limit=2), "tag")
    assert Exposure.objects.get(pk=impression).experiment is None
