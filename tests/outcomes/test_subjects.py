"""SubjectOutcome rows: per subject and experiment, intention-to-treat, holdouts, increments."""

from __future__ import annotations

from datetime import date

import pytest

from personalize.models import Experiment, SubjectOutcome, Variant
from personalize.outcomes import subjects as subjects_module
from personalize.outcomes.reader import rules_from_settings
from personalize.outcomes.rollup import run_rollup
from personalize.outcomes.subjects import (
    compute_outcomes,
    save_outcomes,
    subjects_to_update,
    update_outcomes,
)
from personalize.tracking.merge import merge_subjects
from tests.outcomes.conftest import at

pytestmark = pytest.mark.django_db


def outcomes(experiment) -> dict[int, tuple]:
    return {
        o.subject_id: (o.variant.key, o.exposures, o.clicks, o.add_to_carts, o.conversions,
                       o.revenue)
        for o in SubjectOutcome.objects.filter(experiment=experiment).select_related("variant")
    }


def test_outcomes_count_the_experiments_blocks_in_the_variant_assigned_first(shop, clock):
    experiment = shop.experiment("a", "b")
    a, b = experiment.variants.order_by("id")
    ann, bob, cat, dan = (shop.subject() for _ in range(4))
    shop.assign(ann, a)
    first = shop.show(ann, 0, [0, 1], variant=a)
    shop.click(ann, first, 0, 1)
    shop.buy(ann, 0, 2, value=20)
    elsewhere = shop.show(ann, 3, [3], placement="product", strategy="item_knn")
    shop.click(ann, elsewhere, 3, 4)
    shop.buy(ann, 3, 5, value=7)                  # earned by a block outside the experiment
    switched = shop.show(ann, 10, [2], variant=b)  # shown b later: still counted in a
    shop.click(ann, switched, 2, 11)
    shop.assign(bob, b)
    shop.show(bob, 1, [0], variant=b)
    shop.buy(bob, 0, 2, value=3)                  # never clicked: not attributed
    shop.show(cat, 5, [4], variant=b)             # no Assignment row: its first exposure's variant
    shop.show(dan, 5, [4])                        # outside the experiment

    assert update_outcomes(None) == 3
    assert outcomes(experiment) == {
        ann.pk: ("a", 2, 2, 0, 1, 20.0),
        bob.pk: ("b", 1, 0, 0, 0, 0.0),
        cat.pk: ("b", 1, 0, 0, 0, 0.0),
    }
    assert SubjectOutcome.objects.get(subject=ann).first_exposed_at == at(0)


def test_with_a_holdout_every_conversion_from_the_first_exposure_to_the_end_counts(shop, clock):
    experiment = shop.experiment("none", "rec", holdout="none", ended_at=at(50),
                                 status="stopped")
    holdout, rec = experiment.variants.order_by("id")
    ann, bob = shop.subject(), shop.subject()
    shop.assign(ann, holdout)
    shop.buy(ann, 2, -1, value=100)               # before it was first shown
    shop.show(ann, 0, [], variant=holdout, strategy="")
    shop.buy(ann, 2, 3, value=9)
    shop.cart(ann, 1, 4)
    shop.buy(ann, 3, 60, value=50)                # after the experiment ended
    shop.assign(bob, rec)
    block = shop.show(bob, 1, [0], variant=rec)
    shop.buy(bob, 5, 2, value=4)                  # not from the block: counts all the same
    shop.click(bob, block, 0, 3)

    update_outcomes(None)
    assert outcomes(experiment) == {
        ann.pk: ("none", 1, 0, 1, 1, 9.0),
        bob.pk: ("rec", 1, 1, 0, 1, 4.0),
    }


def test_draft_experiments_have_no_outcomes(shop, clock):
    experiment = shop.experiment("a", "b", status="draft")
    a = experiment.variants.order_by("id").first()
    shop.show(shop.subject(), 0, [0], variant=a)
    assert update_outcomes(None) == 0
    assert not SubjectOutcome.objects.exists()


def test_the_scheduled_rollup_recomputes_only_who_may_have_changed(shop, clock):
    experiment = shop.experiment("a", "b")
    a, _ = experiment.variants.order_by("id")
    early, late = shop.subject(), shop.subject()
    shop.assign(early, a)
    shop.show(early, 0, [0], variant=a)
    clock.set(at(24 * 5))
    run_rollup()
    assert outcomes(experiment)[early.pk][1] == 1
    SubjectOutcome.objects.filter(subject=early).update(exposures=77)   # untouched from now on
    block = shop.show(late, 24 * 9, [1], variant=a)
    shop.click(late, block, 1, 24 * 9 + 1)
    clock.set(at(24 * 10))
    report = run_rollup()
    assert report.outcomes == 1
    assert outcomes(experiment) == {early.pk: ("a", 77, 0, 0, 0, 0.0),
                                    late.pk: ("a", 1, 1, 0, 0, 0.0)}
    run_rollup(since=date(2024, 3, 1))          # a rebuild recomputes everyone
    assert outcomes(experiment)[early.pk][1] == 1


def test_subjects_to_update(shop, clock):
    experiment = shop.experiment("none", "rec", holdout="none")
    holdout, rec = experiment.variants.order_by("id")
    old, recent, buyer, signed_in = (shop.subject() for _ in range(4))
    for subject, variant, hours in ((old, rec, 0), (recent, rec, 100), (buyer, holdout, 0),
                                    (signed_in, rec, 0)):
        shop.assign(subject, variant)
        shop.show(subject, hours, [0], variant=variant)
    update_outcomes(None)
    shop.buy(buyer, 4, 90)
    clock.set(at(95))
    browser = shop.subject()                     # signs in now: merged into signed_in
    merge_subjects(browser, signed_in)
    assert subjects_to_update(experiment, None) == sorted(
        [old.pk, recent.pk, buyer.pk, signed_in.pk])
    assert subjects_to_update(experiment, at(80)) == sorted([recent.pk, buyer.pk, signed_in.pk])


def test_a_subject_whose_exposures_are_gone_loses_its_outcome(shop, clock):
    experiment = shop.experiment("a", "b")
    a = experiment.variants.order_by("id").first()
    ann = shop.subject()
    shop.assign(ann, a)
    exposure = shop.show(ann, 0, [0], variant=a)
    update_outcomes(None)
    assert SubjectOutcome.objects.count() == 1
    exposure.delete()
    rows = compute_outcomes(experiment, [ann.pk], rules_from_settings())
    assert rows == []
    save_outcomes(experiment, [ann.pk], rows)
    assert not SubjectOutcome.objects.exists()


def test_a_subject_whose_variant_was_deleted_is_left_out(shop, clock):
    experiment = shop.experiment("a", "b")
    _a, b = experiment.variants.order_by("id")
    ann = shop.subject()
    shop.show(ann, 0, [0], variant=b)
    Variant.objects.filter(pk=b.pk).delete()     # exposures keep experiment, lose variant
    assert update_outcomes(None) == 0
    assert Experiment.objects.get(pk=experiment.pk).exposures.count() == 1


def test_small_groups_give_the_same_outcomes(shop, clock, monkeypatch):
    experiment = shop.experiment("a", "b")
    a, b = experiment.variants.order_by("id")
    for n in range(6):
        subject = shop.subject()
        variant = (a, b)[n % 2]
        shop.assign(subject, variant)
        block = shop.show(subject, n, [0, 1], variant=variant)
        shop.show(subject, n + 1, [2], placement="product")
        if n % 3:
            shop.click(subject, block, 1, n + 0.5)
            shop.buy(subject, 1, n + 0.7, value=n)
    update_outcomes(None)
    together = outcomes(experiment)
    SubjectOutcome.objects.all().delete()
    monkeypatch.setattr(subjects_module, "EXPOSURES_PER_GROUP", 1)
    update_outcomes(None)
    assert outcomes(experiment) == together
    assert sum(row[4] for row in together.values()) == 4
