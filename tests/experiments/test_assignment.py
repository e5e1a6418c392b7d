"""Which variant a subject gets: the running experiment, weights, sticky assignments."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from personalize.backends.cache import personalize_cache
from personalize.experiments import assignment
from personalize.experiments.assignment import (
    ANY,
    assign,
    assignment_key,
    forget_assignments,
    held_experiment,
    running_experiment,
)
from personalize.experiments.buckets import bucket
from personalize.models import AllocationSnapshot, Assignment, Experiment, Subject, Variant
from tests.experiments.factories import make_experiment, variant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    assignment.clear()
    yield
    assignment.clear()


def test_the_running_experiment_of_a_placement(db):
    make_experiment("home", name="draft", status=Experiment.Status.DRAFT)
    make_experiment("home", name="stopped", status=Experiment.Status.STOPPED)
    make_experiment("cart", name="elsewhere")
    assert running_experiment("home", "g1") is None
    running = make_experiment("home", name="live")
    assert running_experiment("home", "g2").name == "live"
    config = running_experiment("home", "g2")
    assert config.id == running.pk and config.salt == running.salt
    assert [v.key for v in config.variants] == ["a", "b"]
    assert config.control.key == "a" and config.weights == (0.5, 0.5)


def test_a_placement_costs_no_query_while_its_generation_holds(db, django_assert_num_queries):
    make_experiment("home")
    with django_assert_num_queries(2):  # experiments, their variants
        assert running_experiment("home", "g1") is not None
    with django_assert_num_queries(0):
        assert running_experiment("home", "g1") is not None
        assert held_experiment("home") is not None
    with django_assert_num_queries(1):  # without an experiment: one query, then none
        assert running_experiment("cart", "g1") is None
    with django_assert_num_queries(0):
        assert running_experiment("cart", "g1") is None
        assert running_experiment("cart", ANY) is None
        assert held_experiment("product") is None  # never loads anything
    Experiment.objects.update(status=Experiment.Status.STOPPED)
    assert running_experiment("home", "g1") is not None  # same generation: still held
    assert running_experiment("home", "g2") is None  # the generation moved: read again


def test_only_between_start_and_end(db):
    now = timezone.now()
    make_experiment("home", name="later", started_at=now + timedelta(hours=1))
    assert running_experiment("home", "g") is None
    assert running_experiment("home", "g", now=now + timedelta(hours=2)).name == "later"
    make_experiment("cart", name="over", started_at=now - timedelta(days=2),
                    ended_at=now - timedelta(days=1))
    assert running_experiment("cart", "g") is None
    make_experiment("cart", name="until-tomorrow", ended_at=now + timedelta(days=1))
    assert running_experiment("cart", "g2").name == "until-tomorrow"
    assert running_experiment("cart", "g2", now=now + timedelta(days=2)) is None


def test_an_experiment_that_cannot_run_is_left_out_and_logged(db, caplog):
    make_experiment("home", [{"key": "a", "strategy": "ease", "is_control": True},
                             {"key": "b", "strategy": "ease", "is_control": True}], name="two")
    make_experiment("cart", [{"key": "a", "strategy": "ease", "weight": 0},
                             {"key": "b", "strategy": "ease", "weight": 0}], name="zero")
    make_experiment("product", [], name="empty")
    with caplog.at_level(logging.ERROR, logger="personalize.experiments.assignment"):
        assert running_experiment("home", "g") is None
        assert running_experiment("cart", "g") is None
        assert running_experiment("product", "g") is None
    messages = [r.getMessage() for r in caplog.records]
    assert "needs exactly one control variant, it has 2 (a, b)" in messages[0]
    assert "no variant has a positive traffic weight" in messages[1]
    assert "it has no variants" in messages[2]


def test_fixed_weights_are_normalised(db):
    make_experiment("home", [{"key": "a", "strategy": "ease", "weight": 1},
                             {"key": "b", "strategy": "ease", "weight": 3}])
    assert running_experiment("home", "g").weights == (0.25, 0.75)


def test_thompson_uses_the_latest_allocation_equal_shares_before(db, django_assert_num_queries):
    experiment = make_experiment("home", [
        {"key": "a", "strategy": "ease", "weight": 9}, {"key": "b", "strategy": "ease"},
        {"key": "c", "strategy": "ease"}], allocation=Experiment.Allocation.THOMPSON,
        bandit_floor=0.1)
    assert running_experiment("home", "g1").weights == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    for n in range(30):  # the allocation history: only the latest is read
        AllocationSnapshot.objects.create(experiment=experiment, weights={"a": n, "b": 1})
    AllocationSnapshot.objects.create(experiment=experiment, weights={"a": 0.2, "b": 0.7})
    with django_assert_num_queries(3):  # experiments, variants, the latest allocation
        weights = running_experiment("home", "g2").weights
    # the latest snapshot; "c", added since, keeps the floor
    assert weights == pytest.approx((0.2, 0.7, 0.1))


def test_subjects_fall_in_the_bucket_of_their_key(db):
    experiment = make_experiment("home", [{"key": "a", "strategy": "ease", "weight": 1},
                                          {"key": "b", "strategy": "ease", "weight": 1}])
    config = running_experiment("home", "g")
    shares = {"a": 0, "b": 0}
    for n in range(2000):
        key = f"subject-{n}"
        arm = assign(config, n + 1, key, enrolled=True)
        expected = "a" if bucket(experiment.salt, key) < 0.5 else "b"
        assert arm.variant.key == expected and arm.enrolled and not arm.recorded
        shares[arm.variant.key] += 1
    assert abs(shares["a"] - 1000) < 100


def test_without_consent_or_subject_the_control_and_nothing_recorded(db):
    make_experiment("home", [{"key": "a", "strategy": "ease", "weight": 0, "is_control": True},
                             {"key": "b", "strategy": "ease", "weight": 1}])
    config = running_experiment("home", "g")
    subject = Subject.objects.create()
    arm = assign(config, subject.pk, subject.key, enrolled=False)
    assert (arm.variant.key, arm.enrolled) == ("a", False)
    arm = assign(config, None, None, enrolled=True)
    assert (arm.variant.key, arm.enrolled) == ("a", False)
    assert assign(config, subject.pk, subject.key, enrolled=True).variant.key == "b"


def test_an_assignment_is_sticky_whatever_the_weights_become(db, django_assert_num_queries):
    experiment = make_experiment("home")
    subject = Subject.objects.create()
    Assignment.objects.create(experiment=experiment, subject=subject,
                              variant=variant(experiment, "a"))
    Variant.objects.filter(pk=variant(experiment, "a").pk).update(weight=0)  # nobody new to "a"
    config = running_experiment("home", "g-after")
    assert config.bucketed(subject.key).key == "b"
    with django_assert_num_queries(1):  # read back from the database, then cached
        arm = assign(config, subject.pk, subject.key, enrolled=True)
    assert (arm.variant.key, arm.recorded) == ("a", True)
    cached = personalize_cache().get(assignment_key(experiment.pk, subject.pk))
    assert cached == variant(experiment, "a").pk
    with django_assert_num_queries(0):  # the value read with the block
        arm = assign(config, subject.pk, subject.key, enrolled=True, cached=cached)
    assert (arm.variant.key, arm.recorded) == ("a", True)


def test_a_cached_variant_of_another_experiment_is_not_trusted(db):
    first, second = make_experiment("home"), make_experiment("cart")
    subject = Subject.objects.create()
    config = running_experiment("home", "g")
    arm = assign(config, subject.pk, subject.key, enrolled=True,
                 cached=variant(second, "b").pk)
    assert arm.variant.id in {variant(first, "a").pk, variant(first, "b").pk}
    assert not arm.recorded


def test_forgetting_assignments_drops_the_cached_ones(db):
    experiment = make_experiment("home")
    subject = Subject.objects.create()
    assignment.remember_assignment(experiment.pk, subject.pk, variant(experiment, "b").pk)
    key = assignment_key(experiment.pk, subject.pk)
    assert personalize_cache().get(key) == variant(experiment, "b").pk
    assert key.endswith(f"subject:{subject.pk}")  # erasure finds it by its token
    forget_assignments([subject.pk])
    assert personalize_cache().get(key) is None


def test_a_merge_drops_the_cached_assignments_of_both_subjects(
        db, django_capture_on_commit_callbacks):
    experiment = make_experiment("home")
    source, target = Subject.objects.create(), Subject.objects.create()
    for subject, key in ((source, "a"), (target, "b")):
        assignment.remember_assignment(experiment.pk, subject.pk, variant(experiment, key).pk)
    with django_capture_on_commit_callbacks(execute=True):
        source.merged_into = target
        source.save()
    cache = personalize_cache()
    assert cache.get(assignment_key(experiment.pk, source.pk)) is None
    assert cache.get(assignment_key(experiment.pk, target.pk)) is None
