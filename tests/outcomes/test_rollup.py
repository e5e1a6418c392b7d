"""Daily rollups from real rows: exact counts, days in TIME_ZONE, idempotent, incremental."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from personalize.backends.cache import CacheUnavailable
from personalize.consent.rights import erase_subject
from personalize.models import DailyRollup, Event, Exposure, RollupRun, SubjectOutcome
from personalize.outcomes import rollup
from personalize.outcomes.reader import groups
from personalize.outcomes.rollup import RollupInProgress, plan_run, run_rollup
from personalize.training.locks import CacheLock
from tests.outcomes.conftest import at, cells

pytestmark = pytest.mark.django_db

DAY0, DAY1 = "2024-03-04", "2024-03-05"


@pytest.fixture
def timeline(shop, clock):
    """Three visitors on two placements over two days (hours after Monday 09:00 UTC)."""
    ann, bob, cat = shop.subject(), shop.subject(), shop.subject()
    home = shop.show(ann, 0, [0, 1, 2])
    shop.click(ann, home, 1, 0.5)
    shop.cart(ann, 1, 1)
    shop.buy(ann, 1, 2, value=30)                  # 1.5 h after the click: the home block's
    shop.view(ann, 1, 2.5)                         # views are not outcomes
    product = shop.show(ann, 3, [1, 3], placement="product", strategy="item_knn")
    shop.click(ann, product, 3, 4)
    shop.buy(ann, 3, 40)                           # 36 h after the click: nobody's
    later = shop.show(ann, 20, [1])                # day 1 (05:00 UTC)
    shop.click(ann, later, 1, 21)
    shop.buy(ann, 1, 22, value=5)                  # last click: the day-1 block's

    bob_home = shop.show(bob, 1, [0, 1, 2])
    shop.click(bob, bob_home, 0, 20)               # next morning, on Monday's block
    shop.buy(bob, 0, 30, value=12.5)
    shop.show(bob, 16, [2, 4])                     # 01:00 UTC Tuesday

    shop.show(cat, 2, [5])
    shop.click(cat, home, 0, 2.5)                  # ann's impression id: not cat's block
    shop.buy(cat, 5, 3, value=10)                  # shown, never clicked
    return {"ann": ann, "bob": bob, "cat": cat}


EXPECTED = {
    (DAY0, "home", "ease", ""): {
        "impressions": 3, "subjects": 3, "clicks": 2, "add_to_carts": 1, "conversions": 2,
        "revenue": 42.5, "items_shown": 4},
    (DAY0, "product", "item_knn", ""): {
        "impressions": 1, "subjects": 1, "clicks": 1, "add_to_carts": 0, "conversions": 0,
        "revenue": 0.0, "items_shown": 2},
    (DAY1, "home", "ease", ""): {
        "impressions": 2, "subjects": 2, "clicks": 1, "add_to_carts": 0, "conversions": 1,
        "revenue": 5.0, "items_shown": 3},
}


def test_daily_rows_count_exactly_what_each_days_blocks_earned(timeline):
    report = run_rollup()
    assert cells() == EXPECTED
    assert (report.first_day, report.last_day) == (date(2024, 3, 4), date(2024, 3, 6))
    assert report.exposures == 6 and report.rows == 3 and report.caught_up
    row = DailyRollup.objects.get(day=DAY0, placement="home")
    assert row.ctr == pytest.approx(2 / 3)
    assert row.conversion_rate == pytest.approx(2 / 3)
    assert row.revenue_per_subject == pytest.approx(42.5 / 3)
    assert row.experiment is None


def test_view_through_credits_a_shown_item_bought_without_a_click(timeline, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "VIEW_THROUGH_HOURS": 12}
    run_rollup()
    home = cells()[(DAY0, "home", "ease", "")]
    assert (home["conversions"], home["revenue"]) == (3, 52.5)   # cat's purchase, 1 h after


def test_a_longer_window_reaches_the_later_purchase(timeline, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "ATTRIBUTION_WINDOW_HOURS": 48}
    run_rollup()
    product = cells()[(DAY0, "product", "item_knn", "")]
    assert (product["conversions"], product["revenue"]) == (1, 10.0)


def test_days_are_the_sites_time_zone(timeline, settings):
    settings.TIME_ZONE = "America/New_York"      # UTC-5 in early March
    run_rollup()
    found = cells()
    # Tuesday 01:00 UTC is Monday 20:00 in New York; 05:00 UTC is Tuesday 00:00
    assert found[(DAY0, "home", "ease", "")]["impressions"] == 4
    assert found[(DAY0, "home", "ease", "")]["subjects"] == 3
    assert found[(DAY1, "home", "ease", "")]["impressions"] == 1


def test_running_twice_gives_the_same_rows(timeline):
    run_rollup(since=date(2024, 3, 1))
    first = cells()
    run_rollup(since=date(2024, 3, 1))
    run_rollup()
    assert cells() == first == EXPECTED
    assert DailyRollup.objects.count() == 3


def test_small_groups_and_one_day_spans_give_the_same_rows(timeline, monkeypatch):
    # the margins read around each span must find the clicks that compete across days
    monkeypatch.setattr(rollup, "EXPOSURES_PER_GROUP", 1)
    monkeypatch.setattr(rollup, "DAYS_PER_SPAN", 1)
    run_rollup()
    assert cells() == EXPECTED


def test_the_scheduled_run_rewrites_only_the_days_that_can_still_change(shop, clock):
    ann = shop.subject()
    shop.show(ann, 0, [0])
    evening = shop.show(ann, 110, [1])            # Friday 23:00
    clock.set(at(120))                            # Saturday 09:00
    run_rollup()
    assert cells()[("2024-03-08", "home", "ease", "")]["clicks"] == 0
    # a late click and purchase on Friday's block; an old row tampered with
    shop.click(ann, evening, 1, 125)
    shop.buy(ann, 1, 130, value=8)
    DailyRollup.objects.filter(day=DAY0).update(impressions=999)
    clock.set(at(240))                            # a week later
    report = run_rollup()
    # from the last caught-up run (Saturday 09:00) less 48 h 10 min: Thursday the 7th on
    assert report.first_day == date(2024, 3, 7) and report.last_day == date(2024, 3, 14)
    friday = cells()[("2024-03-08", "home", "ease", "")]
    assert (friday["clicks"], friday["conversions"], friday["revenue"]) == (1, 1, 8.0)
    assert cells()[(DAY0, "home", "ease", "")]["impressions"] == 999   # not rewritten
    run_rollup(since=date(2024, 3, 4), until=date(2024, 3, 4))          # a rebuild is
    assert cells()[(DAY0, "home", "ease", "")]["impressions"] == 1


def test_runs_are_recorded_and_a_partial_rebuild_does_not_move_the_mark(shop, clock):
    shop.show(shop.subject(), 0, [0])
    clock.set(at(100))
    run_rollup()
    clock.set(at(200))
    run_rollup(since=date(2024, 3, 5), until=date(2024, 3, 6))
    runs = list(RollupRun.objects.order_by("started_at"))
    assert [(r.caught_up, r.first_day.isoformat(), r.last_day.isoformat()) for r in runs] == [
        (True, "2024-03-04", "2024-03-08"), (False, "2024-03-05", "2024-03-06")]
    assert runs[0].exposures == 1 and runs[0].rows == 1
    # the next scheduled run starts from the first run's mark, not the rebuild's
    assert plan_run(at(200)).first_day == date(2024, 3, 6)
    # a rebuild from before the mark up to today catches up
    assert plan_run(at(200), since=date(2024, 3, 1)).caught_up
    assert not plan_run(at(200), since=date(2024, 3, 7)).caught_up


def test_nothing_to_do_before_any_block_was_shown(db, clock):
    report = run_rollup()
    assert report.first_day is None and report.rows == 0
    assert str(report) == "Nothing to roll up: no recommendation block has been shown yet."
    assert not RollupRun.objects.exists()


def test_a_rebuild_of_days_without_exposures_clears_their_rows(shop, clock):
    ann = shop.subject()
    shop.show(ann, 0, [0])
    run_rollup()
    assert DailyRollup.objects.count() == 1
    erase_subject(ann)
    assert DailyRollup.objects.count() == 1       # rollups keep counts only
    run_rollup(since=date(2024, 3, 4))
    assert DailyRollup.objects.count() == 0


def test_an_erased_subject_leaves_the_rebuilt_counts(timeline):
    run_rollup()
    erase_subject(timeline["bob"])
    run_rollup(since=date(2024, 3, 4))
    home = cells()[(DAY0, "home", "ease", "")]
    assert (home["impressions"], home["subjects"], home["clicks"], home["revenue"]) == (
        2, 2, 1, 30.0)
    assert cells()[(DAY1, "home", "ease", "")]["impressions"] == 1


def test_impossible_ranges_are_refused(db, clock):
    with pytest.raises(ValueError, match="before the first day"):
        plan_run(at(0), since=date(2024, 3, 5), until=date(2024, 3, 4))
    with pytest.raises(ValueError, match="needs its first day"):
        plan_run(at(0), until=date(2024, 3, 4))


def test_one_run_at_a_time(shop, clock):
    shop.show(shop.subject(), 0, [0])
    held = CacheLock("rollup", 60)
    assert held.acquire()
    try:
        with pytest.raises(RollupInProgress):
            run_rollup()
    finally:
        held.release()
    assert run_rollup().rows == 1


def test_an_unreachable_cache_does_not_stop_the_rollup(shop, clock, monkeypatch):
    shop.show(shop.subject(), 0, [0])

    def unreachable(self):
        raise CacheUnavailable("down")

    monkeypatch.setattr(CacheLock, "acquire", unreachable)
    assert run_rollup().rows == 1


def test_progress_is_reported_in_exposures(timeline):
    seen = []
    run_rollup(progress=lambda step, done, total: seen.append((step, done, total)))
    daily = [(done, total) for step, done, total in seen if step == "daily rollups"]
    assert daily[-1] == (6, 6)


def test_the_report_reads_well(timeline):
    report = run_rollup()
    assert str(report).startswith(
        "Rolled up 6 exposure(s) of 2024-03-04 to 2024-03-06 into 3 daily row(s); "
        "0 experiment outcome(s), 0 bandit allocation(s) updated in ")
    data = report.as_dict()
    assert data["first_day"] == "2024-03-04" and data["exposures"] == 6


def test_the_reader_skips_malformed_rows(shop, clock):
    ann = shop.subject()
    home = shop.show(ann, 0, [0, 1])
    shop.click(ann, home, 0, 1, impression="not-a-uuid")
    shop.click(ann, home, 1, 1, position="first")      # a bad position, a good impression
    bad = shop.show(ann, 2, [2])
    type(bad).objects.filter(pk=bad.pk).update(items=[shop.item(2).pk, "x", None, True])
    run_rollup()
    home_cell = cells()[(DAY0, "home", "ease", "")]
    assert (home_cell["impressions"], home_cell["clicks"], home_cell["items_shown"]) == (2, 1, 3)


def test_spans_cover_the_range_exactly():
    spans = rollup._spans(date(2024, 3, 1), date(2024, 3, 16), 7)
    assert spans == [(date(2024, 3, 1), date(2024, 3, 7)), (date(2024, 3, 8), date(2024, 3, 14)),
                     (date(2024, 3, 15), date(2024, 3, 16))]
    assert rollup._spans(date(2024, 3, 2), date(2024, 3, 1), 7) == []
    assert sum((b - a).days + 1 for a, b in spans) == 16
    assert all(b - a < timedelta(days=7) for a, b in spans)


def test_groups_hold_about_a_budget_of_exposures():
    counts = [(1, 3), (2, 3), (3, 10), (4, 1), (5, 1), (6, 1)]
    assert list(groups(counts, budget=6, most=10)) == [[1, 2], [3], [4, 5, 6]]
    assert list(groups(counts, budget=100, most=4)) == [[1, 2, 3, 4], [5, 6]]
    assert list(groups([], budget=5, most=5)) == []


def test_a_site_storing_naive_local_times(shop, clock, settings):
    settings.USE_TZ = False
    settings.TIME_ZONE = "Europe/Berlin"
    clock.set(datetime(2024, 3, 6, 12, 0))
    ann = shop.subject()
    experiment = shop.experiment("a", "b")
    variant = experiment.variants.order_by("id").first()
    naive = datetime(2024, 3, 4, 23, 30)                # Berlin wall-clock time, stored as is
    block = Exposure.objects.create(subject=ann, placement="home", strategy="ease",
                                    items=[shop.item(0).pk], source="tag", created_at=naive,
                                    experiment=experiment, variant=variant)
    Event.objects.create(subject=ann, item=shop.item(0), event_type="click",
                         context={"impression": str(block.id), "position": 1},
                         timestamp=naive + timedelta(minutes=45))   # the next day, locally
    Event.objects.create(subject=ann, item=shop.item(0), event_type="purchase", value=3,
                         timestamp=naive + timedelta(hours=2))
    report = run_rollup()
    assert report.first_day == date(2024, 3, 4)
    assert cells() == {(DAY0, "home", "ease", "a"): {
        "impressions": 1, "subjects": 1, "clicks": 1, "add_to_carts": 0, "conversions": 1,
        "revenue": 3.0, "items_shown": 1}}
    outcome = SubjectOutcome.objects.get()
    assert (outcome.first_exposed_at, outcome.conversions) == (naive, 1)
    assert run_rollup(since=date(2024, 3, 1)).caught_up
