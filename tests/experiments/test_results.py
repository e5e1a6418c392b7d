"""Reading an experiment's timeline from its subjects' outcomes, and its report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from personalize.experiments.report import Arm
from personalize.experiments.results import (
    arms_for,
    design_for,
    experiment_report,
    experiment_timeline,
)
from personalize.models import AllocationSnapshot, Experiment, Variant
from tests.experiments.factories import add_outcomes

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def experiment() -> Experiment:
    experiment = Experiment.objects.create(
        name="home test", placement="home", status=Experiment.Status.RUNNING,
        primary_metric=Experiment.Metric.CTR, minimum_detectable_effect=2.0,
    )
    Variant.objects.create(experiment=experiment, key="a", is_control=True, weight=1.0)
    Variant.objects.create(experiment=experiment, key="b", weight=3.0)
    return experiment


def _outcomes(experiment: Experiment, key: str, rows: list[tuple[int, int, float]], *,
              start: datetime = START, step: timedelta = timedelta(minutes=1)) -> None:
    add_outcomes(experiment, key, rows, start=start, step=step)


def test_the_timeline_counts_per_day_and_variant_in_one_aggregate_query(
        experiment, django_assert_num_queries):
    _outcomes(experiment, "a", [(0, 0, 0.0), (2, 0, 0.0), (1, 1, 30.0), (0, 1, 12.5)])
    _outcomes(experiment, "b", [(3, 2, 40.0), (0, 0, 0.0)])
    _outcomes(experiment, "b", [(1, 0, 0.0)], start=START + timedelta(days=2))
    with django_assert_num_queries(2):  # the variants, then one grouped aggregate
        timeline = experiment_timeline(experiment, today=date(2026, 3, 5))
    assert timeline.arms == (Arm("a", True, 1.0), Arm("b", False, 3.0))
    assert timeline.first_day == date(2026, 3, 2) and timeline.last_day_partial
    expected = np.zeros((4, 2, 5))  # 2 to 5 March; the 5th is today
    expected[0, 0] = [4, 2, 2, 42.5, 30.0**2 + 12.5**2]
    expected[0, 1] = [2, 1, 1, 40.0, 1600.0]
    expected[2, 1] = [1, 1, 0, 0.0, 0.0]
    np.testing.assert_allclose(timeline.counts, expected)
    assert timeline.complete_days == 3


def test_a_stopped_experiment_ends_with_its_last_exposure(experiment):
    experiment.status = Experiment.Status.STOPPED
    experiment.save()
    _outcomes(experiment, "a", [(0, 0, 0.0)], start=START + timedelta(days=1))
    timeline = experiment_timeline(experiment, today=date(2026, 4, 1))
    assert timeline.counts.shape == (1, 2, 5) and not timeline.last_day_partial
    assert timeline.first_day == date(2026, 3, 3)


def test_without_exposures_the_timeline_is_empty(experiment):
    timeline = experiment_timeline(experiment)
    assert timeline.counts.shape == (0, 2, 5) and timeline.first_day is None
    assert experiment_report(experiment).verdict == "no data yet: no subject has been exposed"


def test_bandit_weights_come_from_the_latest_allocation(experiment):
    experiment.allocation = Experiment.Allocation.THOMPSON
    experiment.save()
    variants = list(experiment.variants.order_by("pk"))
    assert [a.weight for a in arms_for(experiment, variants)] == [1.0, 1.0]
    AllocationSnapshot.objects.create(experiment=experiment, weights={"a": 0.5, "b": 0.5})
    AllocationSnapshot.objects.create(experiment=experiment, weights={"a": 0.2})
    assert [a.weight for a in arms_for(experiment, variants)] == [0.2, 0.0]


def test_design_follows_the_experiment(experiment):
    design = design_for(experiment)
    assert (design.metric, design.mde, design.alpha, design.power) == ("ctr", 2.0, 0.05, 0.8)
    assert design.running and not design.bandit
    experiment.allocation = Experiment.Allocation.THOMPSON
    experiment.status = Experiment.Status.STOPPED
    assert design_for(experiment).bandit and not design_for(experiment).running


def test_the_report_decides_at_the_horizon_and_later_subjects_do_not_move_it(experiment):
    Variant.objects.filter(experiment=experiment).update(weight=1.0)
    # day 1: 30 subjects each, 20% vs 23% click: a plan of a few dozen subjects, no difference
    _outcomes(experiment, "a", [(1, 0, 0.0)] * 6 + [(0, 0, 0.0)] * 24)
    _outcomes(experiment, "b", [(1, 0, 0.0)] * 7 + [(0, 0, 0.0)] * 23)
    first = experiment_report(experiment, today=date(2026, 3, 3))
    assert first.horizon_date == date(2026, 3, 2) and not first.interim
    assert first.verdict.startswith("no significant difference between b and a")
    # three days later, every new b subject clicks and no new a subject does
    later_day = START + timedelta(days=3)
    _outcomes(experiment, "b", [(1, 0, 0.0)] * 60, start=later_day)
    _outcomes(experiment, "a", [(0, 0, 0.0)] * 60, start=later_day)
    later = experiment_report(experiment, today=date(2026, 3, 9))
    assert later.plan.planned == first.plan.planned
    assert later.verdict == first.verdict
    assert [(v.subjects, v.exposed) for v in later.variants] == [(30, 90), (30, 90)]


def test_before_the_horizon_the_report_projects_from_the_daily_rate(experiment):
    experiment.minimum_detectable_effect = 0.2
    experiment.save()
    for day in range(3):
        start = START + timedelta(days=day)
        _outcomes(experiment, "a", [(1, 0, 0.0)] + [(0, 0, 0.0)] * 9, start=start)
        _outcomes(experiment, "b", [(1, 0, 0.0)] + [(0, 0, 0.0)] * 29, start=start)
    report = experiment_report(experiment, today=date(2026, 3, 5))
    assert report.interim and report.plan.days_left is not None
    # 40 new subjects a day, a quarter of them to a
    missing_a = report.plan.planned["a"] - 30
    assert report.plan.days_left == pytest.approx(missing_a / 10)
