"""The anonymous -> signed-in merge carries exposures, assignments and experiment outcomes."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from personalize.consent.service import grant_consent, revoke_consent
from personalize.models import Assignment, DailyRollup, Event, Exposure, Subject, SubjectOutcome
from personalize.outcomes.rollup import run_rollup
from personalize.outcomes.subjects import update_outcomes
from personalize.tracking.merge import merge_subjects
from tests.outcomes.conftest import Clock, Shop, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def shop(db) -> Shop:
    return Shop()


@pytest.fixture
def pair(shop, clock):
    """An anonymous browser and a signed-in user, both with both kinds of consent."""
    user = get_user_model().objects.create_user("ann", password="pw")
    browser, account = shop.subject(), Subject.objects.create(user=user)
    for subject in (browser, account):
        grant_consent(subject, "personalization")
        grant_consent(subject, "analytics")
    return browser, account


def test_the_earlier_assignment_is_kept_and_outcomes_become_one(shop, pair):
    browser, account = pair
    experiment = shop.experiment("a", "b")
    a, b = experiment.variants.order_by("id")
    shop.assign(browser, a, hours=0)
    shop.assign(account, b, hours=5)
    shown = shop.show(browser, 0, [0], variant=a)
    shop.click(browser, shown, 0, 1)
    shop.show(account, 5, [1], variant=b)
    shop.show(account, 6, [2], variant=b)
    update_outcomes(None)

    merge_subjects(browser, account)

    [kept] = Assignment.objects.filter(experiment=experiment)
    assert (kept.subject_id, kept.variant_id) == (account.pk, a.pk)
    assert set(Exposure.objects.values_list("subject_id", flat=True)) == {account.pk}
    [outcome] = SubjectOutcome.objects.filter(experiment=experiment)
    assert (outcome.subject_id, outcome.variant_id, outcome.exposures, outcome.clicks) == (
        account.pk, a.pk, 3, 1)
    assert outcome.first_exposed_at == at(0)
    # the next rollup recomputes the merged subject and agrees
    run_rollup()
    outcome.refresh_from_db()
    assert (outcome.variant_id, outcome.exposures, outcome.clicks) == (a.pk, 3, 1)


def test_the_users_earlier_assignment_wins_over_the_browsers(shop, pair):
    browser, account = pair
    experiment = shop.experiment("a", "b")
    a, b = experiment.variants.order_by("id")
    shop.assign(account, b, hours=0)
    shop.assign(browser, a, hours=5)
    shop.show(browser, 5, [0], variant=a)
    update_outcomes(None)
    merge_subjects(browser, account)
    [kept] = Assignment.objects.filter(experiment=experiment)
    assert (kept.subject_id, kept.variant_id) == (account.pk, b.pk)
    [outcome] = SubjectOutcome.objects.filter(experiment=experiment)
    assert (outcome.subject_id, outcome.variant_id, outcome.exposures) == (account.pk, b.pk, 1)


def test_assignments_of_other_experiments_just_move(shop, pair):
    browser, account = pair
    first, second = shop.experiment("a", "b"), shop.experiment("x", "y")
    shop.assign(browser, first.variants.first())
    shop.assign(account, second.variants.first())
    merge_subjects(browser, account)
    assert set(Assignment.objects.values_list("subject_id", "experiment_id")) == {
        (account.pk, first.pk), (account.pk, second.pk)}


def test_without_analytics_consent_the_browsers_rows_are_deleted(shop, clock):
    user = get_user_model().objects.create_user("bob", password="pw")
    browser, account = shop.subject(), Subject.objects.create(user=user)
    grant_consent(browser, "analytics")        # older than the user's decision
    experiment = shop.experiment("a", "b")
    a, b = experiment.variants.order_by("id")
    shop.assign(browser, a)
    shop.show(browser, 0, [0], variant=a)
    shop.assign(account, b)
    shop.show(account, 1, [0], variant=b)
    update_outcomes(None)
    clock.set(at(70))
    revoke_consent(account, "analytics")
    merge_subjects(browser, account)
    assert list(Exposure.objects.values_list("subject_id", flat=True)) == [account.pk]
    assert list(Assignment.objects.values_list("subject_id", flat=True)) == [account.pk]
    assert list(SubjectOutcome.objects.values_list("subject_id", flat=True)) == [account.pk]


def test_a_click_before_signing_in_earns_the_purchase_after(shop, pair):
    browser, account = pair
    block = shop.show(browser, 0, [3])
    shop.click(browser, block, 3, 1)
    shop.buy(account, 3, 2, value=15)         # on the account, before the merge happened
    run_rollup()
    assert DailyRollup.objects.get().conversions == 0
    merge_subjects(browser, account)
    assert Event.objects.filter(subject=account).count() == 2
    run_rollup()
    row = DailyRollup.objects.get()
    assert (row.clicks, row.conversions, row.revenue) == (1, 1, 15.0)
