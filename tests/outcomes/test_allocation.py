"""Bandit weights after each rollup: Thompson sampling on the primary rate metric."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from personalize.models import AllocationSnapshot, SubjectOutcome
from personalize.outcomes.allocation import arm_counts, update_allocation, update_allocations
from personalize.outcomes.rollup import run_rollup
from personalize.outcomes.subjects import update_outcomes

pytestmark = pytest.mark.django_db


@pytest.fixture
def bandit(monkeypatch):
    """A stand-in for ``thompson_weights`` that records the call the rollup makes."""
    calls = []

    def thompson_weights(successes, trials, floor, rng=None, draws=20000):
        calls.append({"successes": list(successes), "trials": list(trials), "floor": floor,
                      "rng": rng})
        total = sum(s + 1 for s in successes)
        return [(s + 1) / total for s in successes]

    monkeypatch.setattr("personalize.outcomes.allocation.thompson_weights", thompson_weights)
    return calls


def bandit_experiment(shop, metric="ctr", **fields):
    experiment = shop.experiment("a", "b", "c", allocation="thompson", primary_metric=metric,
                                 bandit_floor=0.1, **fields)
    return experiment, list(experiment.variants.order_by("id"))


def expose(shop, variant, *, clicked=False, bought=False, hours=0):
    subject = shop.subject()
    shop.assign(subject, variant)
    block = shop.show(subject, hours, [0], variant=variant)
    if clicked or bought:
        shop.click(subject, block, 0, hours + 0.1)
    if bought:
        shop.buy(subject, 0, hours + 0.2)
    return subject


def test_the_rollup_stores_the_bandits_new_weights(shop, clock, bandit):
    experiment, (a, b, _c) = bandit_experiment(shop)
    expose(shop, a)
    expose(shop, a, clicked=True)
    expose(shop, b, clicked=True)
    expose(shop, b, clicked=True, bought=True)
    expose(shop, b)
    report = run_rollup()
    assert report.allocations == 1
    [call] = bandit
    assert call["successes"] == [1, 2, 0] and call["trials"] == [2, 3, 0]
    assert call["floor"] == 0.1
    assert isinstance(call["rng"], np.random.Generator)
    snapshot = AllocationSnapshot.objects.get(experiment=experiment)
    assert snapshot.weights == {"a": 0.333333, "b": 0.5, "c": 0.166667}


def test_unchanged_counts_store_nothing_new(shop, clock, bandit):
    experiment, (a, _, _) = bandit_experiment(shop)
    expose(shop, a, clicked=True)
    update_outcomes(None)
    assert update_allocation(experiment) is not None
    assert update_allocation(experiment) is None
    assert AllocationSnapshot.objects.count() == 1
    # the same counts seed the same generator: the weights do not wander between runs
    first, second = (call["rng"].random() for call in bandit)
    assert first == second


def test_nothing_before_any_subject_was_exposed(shop, clock, bandit):
    experiment, _ = bandit_experiment(shop)
    assert update_allocation(experiment) is None
    assert bandit == []


def test_conversion_and_revenue_bandits_count_conversions(shop, clock, bandit):
    for metric in ("conversion", "revenue"):
        _experiment, (a, b, _) = bandit_experiment(shop, metric=metric)
        expose(shop, a, clicked=True)
        expose(shop, b, bought=True)
    run_rollup()
    assert [call["successes"] for call in bandit] == [[0, 1, 0], [0, 1, 0]]


def test_only_running_thompson_experiments_move(shop, clock, bandit):
    fixed = shop.experiment("a", "b")
    stopped, _ = bandit_experiment(shop, status="stopped")
    for experiment in (fixed, stopped):
        expose(shop, experiment.variants.first(), clicked=True)
    update_outcomes(None)
    assert SubjectOutcome.objects.count() == 2
    assert update_allocations() == 0
    assert bandit == []


def test_arm_counts_follow_the_variant_order(shop, clock):
    experiment, (a, b, c) = bandit_experiment(shop)
    expose(shop, c, clicked=True)
    expose(shop, c)
    update_outcomes(None)
    assert arm_counts(experiment, [a, b, c]) == ([0, 0, 1], [0, 0, 2])
    assert arm_counts(experiment, [c, a]) == ([1, 0], [2, 0])


@pytest.mark.skipif(importlib.util.find_spec("personalize.experiments.bandit") is None,
                    reason="personalize.experiments.bandit is built in parallel (issue 20)")
def test_with_the_real_bandit(shop, clock):
    experiment, (a, _b, c) = bandit_experiment(shop)
    for _ in range(30):
        expose(shop, a)
        expose(shop, c, clicked=True)
    run_rollup()
    weights = AllocationSnapshot.objects.get(experiment=experiment).weights
    assert set(weights) == {"a", "b", "c"}
    assert sum(weights.values()) == pytest.approx(1, abs=1e-5)
    assert min(weights.values()) >= 0.1 - 1e-6
    assert weights["c"] > weights["a"]
