"""The chart lines of an experiment: cumulative lift, daily metric, allocation history."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from personalize.experiments.analysis import analyse
from personalize.experiments.plots import PALETTE
from personalize.experiments.report import CONVERSION, CTR, REVENUE, Arm, Design, Timeline
from personalize.experiments.series import allocation, cumulative_lift, daily_metric, day_labels
from personalize.experiments.stats import compare_means, compare_rates, mean_estimate

ARMS = (Arm("b"), Arm("a", is_control=True))  # the control second: the series reorder


def timeline(days, arms=ARMS, **kwargs) -> Timeline:
    """``days``: per day, per arm (in ``arms`` order), (subjects, clicked, converted, revenue, squares)."""
    return Timeline(arms, np.array(days, dtype=float), **kwargs)


TWO_DAYS = timeline([
    [[100, 12, 4, 80.0, 2000.0], [100, 10, 3, 50.0, 1500.0]],
    [[0, 0, 0, 0.0, 0.0], [50, 5, 1, 20.0, 400.0]],
], first_day=date(2026, 12, 1))


def test_days_are_labelled_by_date_or_by_number():
    assert day_labels(TWO_DAYS) == ["2026-12-01", "2026-12-02"]
    assert day_labels(timeline(TWO_DAYS.counts)) == ["day 1", "day 2"]


def test_the_cumulative_lift_uses_the_counts_up_to_each_day():
    [lift] = cumulative_lift(TWO_DAYS, Design(metric=CTR))
    assert lift.name == "b vs a" and lift.colour == PALETTE[1]  # b's colour on every chart
    first = compare_rates(12, 100, 10, 100, alpha=0.05)
    second = compare_rates(12, 100, 15, 150, alpha=0.05)
    assert lift.values == pytest.approx([0.2, 12 / 100 / (15 / 150) - 1])
    assert lift.values == [first.lift, second.lift]
    assert lift.lower == [first.interval.low, second.interval.low]
    assert lift.upper == [first.interval.high, second.interval.high]


@pytest.mark.parametrize(("mde", "day"), [(0.05, -1), (5.0, 0)])
def test_the_point_of_the_reports_day_is_the_reports_figure(mde, day):
    """Interim: the last day's point; once the horizon is reached, the horizon day's."""
    design = Design(metric=CONVERSION, mde=mde)
    [lift] = cumulative_lift(TWO_DAYS, design)
    report = analyse(design, TWO_DAYS)
    assert report.horizon_day == (None if day == -1 else day)
    [reported] = report.comparisons[CONVERSION]
    assert lift.values[day] == reported.comparison.lift
    assert (lift.lower[day], lift.upper[day]) == (reported.comparison.interval.low,
                                                  reported.comparison.interval.high)


def test_revenue_is_compared_by_its_means():
    [lift] = cumulative_lift(TWO_DAYS, Design(metric=REVENUE))
    expected = compare_means(mean_estimate(80.0, 2000.0, 100), mean_estimate(70.0, 1900.0, 150))
    assert lift.values[-1] == pytest.approx(expected.lift)
    assert lift.lower[-1] == pytest.approx(expected.interval.low)


def test_with_more_variants_the_intervals_are_bonferronis():
    arms = (Arm("a", is_control=True), Arm("b"), Arm("c"))
    three = timeline([[[200, 20, 0, 0, 0], [200, 30, 0, 0, 0], [200, 25, 0, 0, 0]]], arms=arms)
    b, c = cumulative_lift(three, Design(metric=CTR, alpha=0.05))
    assert (b.name, c.name) == ("b vs a", "c vs a")
    expected = compare_rates(25, 200, 20, 200, alpha=0.025)
    assert c.values == [expected.lift] and c.lower == [expected.interval.low]


def test_undefined_days_are_gaps():
    gaps = timeline([
        [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],  # nobody yet
        [[10, 2, 0, 0, 0], [10, 0, 0, 0, 0]],  # the control at 0: no lift
        [[10, 1, 0, 0, 0], [10, 2, 0, 0, 0]],
    ])
    [lift] = cumulative_lift(gaps, Design(metric=CTR))
    assert lift.values[:2] == [None, None] and lift.lower[:2] == [None, None]
    assert lift.values[2] == pytest.approx(3 / 20 / (2 / 20) - 1)

    a, b = daily_metric(gaps, Design(metric=CTR))
    assert a.name == "a" and a.values == [None, 0.0, 0.2]
    assert b.name == "b" and b.values == [None, 0.2, 0.1]
    assert a.lower is None


def test_the_daily_metric_counts_that_days_new_subjects():
    a, b = daily_metric(TWO_DAYS, Design(metric=REVENUE))
    assert a.values == [0.5, 0.4] and b.values == [0.8, None]
    a, b = daily_metric(TWO_DAYS, Design(metric=CONVERSION))
    assert a.values == [0.03, 0.02] and b.values == [0.04, None]


def test_an_empty_timeline_has_empty_lines():
    empty = timeline(np.zeros((0, 2, 5)))
    assert day_labels(empty) == []
    [lift] = cumulative_lift(empty, Design())
    assert lift.values == [] and lift.lower == []
    assert [s.values for s in daily_metric(empty, Design())] == [[], []]


def test_the_allocation_history_gives_each_variant_its_share():
    lines = allocation(["a", "b", "c"], [{"a": 0.5, "b": 0.5}, {"a": 0.2, "b": 0.7, "c": 0.1}])
    assert [(s.name, s.values) for s in lines] == [
        ("a", [0.5, 0.2]), ("b", [0.5, 0.7]), ("c", [0.0, 0.1])]
    assert allocation(["a"], [])[0].values == []
