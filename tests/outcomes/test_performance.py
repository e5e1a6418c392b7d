"""Placement performance: the last days' daily rollups per placement and strategy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from personalize.models import DailyRollup, Experiment
from personalize.outcomes.performance import Totals, placement_performance, window
from tests.experiments.factories import make_experiment

pytestmark = pytest.mark.django_db

TODAY = date(2024, 3, 10)


def rollup(day: date, placement: str = "home", strategy: str = "ease", *,
           experiment: Experiment | None = None, variant: str = "", **counts) -> DailyRollup:
    return DailyRollup.objects.create(day=day, placement=placement, strategy=strategy,
                                      experiment=experiment, variant=variant, **counts)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def test_totals_rates_and_zero_filled_days_per_placement_and_strategy(
        django_assert_num_queries):
    rollup(days_ago(0), impressions=100, subjects=40, clicks=5, add_to_carts=3, conversions=2,
           revenue=50.0, items_shown=12)
    rollup(days_ago(2), impressions=300, subjects=60, clicks=10, add_to_carts=1, conversions=1,
           revenue=25.5, items_shown=20)
    rollup(days_ago(1), strategy="popular", impressions=50, subjects=50, clicks=1,
           items_shown=4)
    rollup(days_ago(1), placement="cart", strategy="item_knn", impressions=10, subjects=10)
    with django_assert_num_queries(3):  # totals, days, running experiments
        performance = placement_performance(3, today=TODAY)
    assert performance.first_day == days_ago(2) and performance.last_day == TODAY
    assert performance.days == [days_ago(2), days_ago(1), TODAY]
    assert [p.placement for p in performance.placements] == ["cart", "home"]
    home = performance.placements[1]
    assert [s.strategy for s in home.strategies] == ["ease", "popular"]
    ease = home.strategies[0]
    assert ease.totals == Totals(impressions=400, subject_days=100, clicks=15, add_to_carts=4,
                                 conversions=3, revenue=75.5, rows=2, items_shown_max=20,
                                 items_shown_mean=16.0)
    assert ease.totals.ctr == pytest.approx(15 / 400)
    assert ease.totals.conversion_rate == pytest.approx(3 / 400)  # per impression
    assert ease.totals.revenue_per_subject_day == pytest.approx(0.755)
    assert ease.daily.impressions == (300, 0, 100)
    assert ease.daily.ctr == pytest.approx((10 / 300, 0.0, 5 / 100))
    assert ease.daily.revenue == (25.5, 0.0, 50.0)
    # the placement's totals add its strategies up, day by day too
    assert home.totals.impressions == 450 and home.totals.subject_days == 150
    assert home.totals.clicks == 16 and home.totals.rows == 3
    assert home.totals.items_shown_max == 20
    assert home.totals.items_shown_mean == pytest.approx(12.0)
    assert home.daily.impressions == (300, 50, 100)
    assert home.daily.ctr == pytest.approx((10 / 300, 1 / 50, 5 / 100))
    assert home.experiment is None


def test_the_window_ends_today_in_the_current_time_zone(settings, monkeypatch):
    settings.TIME_ZONE = "Pacific/Auckland"  # UTC+13 in March
    # 2024-03-09 20:00 UTC is already 10 March in Auckland
    monkeypatch.setattr(timezone, "now", lambda: datetime(2024, 3, 9, 20, 0, tzinfo=UTC))
    assert window(7) == (date(2024, 3, 4), TODAY)
    rollup(date(2024, 3, 3), impressions=1)   # the day before the window
    rollup(date(2024, 3, 4), impressions=2)   # its first day
    rollup(TODAY, impressions=4)              # today
    rollup(date(2024, 3, 11), impressions=8)  # tomorrow: not in a window ending today
    (home,) = placement_performance(7).placements
    assert home.totals.impressions == 6
    assert home.daily.impressions == (2, 0, 0, 0, 0, 0, 4)


def test_experiment_rows_count_each_block_once_in_its_variants_strategy():
    experiment = make_experiment("home")
    rollup(TODAY, strategy="item_knn", experiment=experiment, variant="a", impressions=30,
           subjects=20, clicks=3, conversions=1, revenue=10.0, items_shown=9)
    rollup(TODAY, strategy="ease", experiment=experiment, variant="b", impressions=40,
           subjects=25, clicks=6, items_shown=11)
    rollup(TODAY, strategy="ease", impressions=5, subjects=5, clicks=1, items_shown=5)
    (home,) = placement_performance(30, today=TODAY).placements
    by_strategy = {s.strategy: s.totals for s in home.strategies}
    assert by_strategy["item_knn"].impressions == 30 and by_strategy["ease"].impressions == 45
    assert by_strategy["ease"].clicks == 7 and by_strategy["ease"].subject_days == 30
    assert by_strategy["ease"].items_shown_max == 11
    assert home.totals.impressions == 75 and home.totals.revenue == 10.0
    assert home.experiment is not None and home.experiment.id == experiment.pk
    assert home.experiment.name == experiment.name


def test_only_a_running_experiment_is_linked():
    make_experiment("home", status=Experiment.Status.STOPPED, name="old")
    make_experiment("home", status=Experiment.Status.DRAFT, name="next")
    rollup(TODAY, impressions=1)
    (home,) = placement_performance(30, today=TODAY).placements
    assert home.experiment is None


def test_no_rows_no_placements():
    rollup(days_ago(30), impressions=10)  # just outside the 30 days
    performance = placement_performance(30, today=TODAY)
    assert performance.placements == ()
    assert len(performance.days) == 30


def test_rates_without_impressions_are_none():
    totals = Totals()
    assert totals.ctr is None and totals.conversion_rate is None
    assert totals.revenue_per_subject_day is None
    assert Totals.combined([]) == Totals()


@pytest.mark.parametrize("days", [0, -1, 367])
def test_the_window_is_at_least_a_day_and_at_most_a_year(days):
    with pytest.raises(ValueError, match="days must be between 1 and 366"):
        placement_performance(days)


def test_as_dict_is_plain_data():
    rollup(TODAY, impressions=10, subjects=4, clicks=1, revenue=8.0, items_shown=3)
    data = placement_performance(2, today=TODAY).as_dict()
    assert data["days"] == ["2024-03-09", "2024-03-10"]
    (home,) = data["placements"]
    assert home["impressions"] == 10 and home["ctr"] == 0.1
    assert home["revenue_per_subject_day"] == 2.0
    assert home["daily"] == {"impressions": [0, 10], "ctr": [0.0, 0.1], "revenue": [0.0, 8.0]}
    assert home["strategies"][0]["strategy"] == "ease"
    assert home["running_experiment"] is None
