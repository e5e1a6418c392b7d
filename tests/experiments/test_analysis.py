"""The report of an experiment from counts: plan, comparisons, multiplicity, the verdict."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest

from personalize.experiments.analysis import analyse
from personalize.experiments.report import Arm, Design, Timeline
from personalize.experiments.stats import (
    compare_means,
    compare_rates,
    holm,
    mean_estimate,
    sample_size_for_rate,
)

CTR = Design(metric="ctr", mde=0.2)


def _variant(key: str, subjects: int, clicked: int, *, control: bool = False,
             converted: int = 0, revenue: float = 0.0, squares: float = 0.0,
             weight: float = 1.0) -> tuple[Arm, list[float]]:
    return Arm(key, control, weight), [subjects, clicked, converted, revenue, squares]


def _totals(*variants: tuple[Arm, list[float]], **kwargs) -> Timeline:
    """A timeline of one complete day holding each variant's totals."""
    return Timeline.from_totals([arm for arm, _ in variants], [row for _, row in variants],
                                **kwargs)


def _days(arms: list[Arm], per_day: list[list[list[float]]], **kwargs) -> Timeline:
    return Timeline(tuple(arms), np.array(per_day, dtype=float), **kwargs)


def test_a_clear_win_names_the_winner_with_lift_interval_and_p():
    report = analyse(CTR, _totals(_variant("a", 20_000, 600, control=True), _variant("b", 20_000, 760)))
    assert not report.interim and report.plan.reached
    assert report.verdict == "b beats a on click-through rate, +27% [14%, 41%], p < 0.001"
    comparison = report.primary()[0].comparison
    assert comparison.lift == pytest.approx(760 / 600 - 1)
    assert comparison == compare_rates(760, 20_000, 600, 20_000)


def test_a_loss_and_its_p_value():
    report = analyse(CTR, _totals(_variant("a", 20_000, 700, control=True), _variant("b", 20_000, 620)))
    p = compare_rates(620, 20_000, 700, 20_000).p_value
    assert 0.001 < p < 0.05
    assert report.verdict == f"b loses to a on click-through rate, -11% [-20%, -2%], p = {p:.2g}"


def test_no_significant_difference_says_so_with_the_figures():
    report = analyse(CTR, _totals(_variant("a", 20_000, 600, control=True), _variant("b", 20_000, 610)))
    p = compare_rates(610, 20_000, 600, 20_000).p_value
    assert report.verdict == (f"no significant difference between b and a on click-through "
                              f"rate: +1.7% [-9.0%, 13.6%], p = {p:.2g}")


def test_before_the_planned_sample_the_report_is_interim_and_says_how_far():
    planned = sample_size_for_rate(0.03, 0.2)
    n = math.ceil(0.415 * planned / 100) * 100
    # a first busy day, then 7 days of 1,000 new subjects, half of them to each variant:
    # the projection reads the last 7 days
    first = [[n - 3500, int(n * 0.03), 0, 0, 0], [n - 3500, int(n * 0.05), 0, 0, 0]]
    quiet = [[500, 0, 0, 0, 0], [500, 0, 0, 0, 0]]
    report = analyse(CTR, _days([Arm("a", True), Arm("b")], [first] + [quiet] * 7))
    assert report.plan.planned == {"a": planned, "b": planned}
    days = math.ceil((planned - n) / 500)
    assert report.verdict == f"not enough data: 41% of the planned sample, about {days} more days"
    assert report.interim
    # the estimates are still shown (b is far ahead), but no decision is made
    assert report.primary()[0].significant
    assert any("fixed horizon" in note for note in report.notes)


def test_a_stopped_experiment_short_of_its_sample_says_it_stopped():
    design = Design(metric="ctr", mde=0.2, running=False)
    report = analyse(design, _totals(_variant("a", 2000, 60, control=True),
                                     _variant("b", 2000, 70)))
    assert report.plan.days_left is None
    assert report.verdict.endswith("of the planned sample; the experiment stopped before reaching it")


def test_a_sample_ratio_mismatch_overrides_the_verdict_and_warns():
    report = analyse(CTR, _totals(_variant("a", 10_400, 312, control=True), _variant("b", 9_600, 290)))
    assert report.srm.mismatch
    assert report.verdict.startswith("sample ratio mismatch (p < 0.001): the split of subjects")
    assert report.warnings == [
        "Sample ratio mismatch: 10400 / 9600 subjects against planned shares 50% / 50% "
        "(p < 0.001). Look for an assignment, caching or logging fault before reading any result."
    ]


def test_unequal_weights_are_planned_and_checked_with_their_shares():
    counts = [_variant("a", 15_000, 450, control=True, weight=3.0),
              _variant("b", 5_000, 180, weight=1.0)]
    report = analyse(CTR, _totals(*counts))
    assert not report.srm.mismatch
    control_needs = sample_size_for_rate(0.03, 0.2, ratio=1 / 3)
    assert report.plan.planned == {"a": control_needs, "b": math.ceil(control_needs / 3)}


def test_three_variants_are_holm_adjusted_with_bonferroni_intervals():
    counts = [_variant("a", 30_000, 900, control=True), _variant("b", 30_000, 960),
              _variant("c", 30_000, 990)]
    report = analyse(CTR, _totals(*counts))
    raw = [compare_rates(x, 30_000, 900, 30_000).p_value for x in (960, 990)]
    b, c = report.primary()
    assert [b.p_adjusted, c.p_adjusted] == pytest.approx(holm(raw))
    # c alone would pass at 0.05; against two comparisons it does not
    assert c.comparison.p_value < 0.05 < c.p_adjusted and not c.significant
    assert b.comparison.interval == compare_rates(960, 30_000, 900, 30_000, alpha=0.025).interval
    # the plan holds at the Bonferroni level, for each comparison
    assert report.plan.planned["b"] == sample_size_for_rate(0.03, 0.2, alpha=0.025)
    assert report.verdict == (
        f"no significant difference between b and a on click-through rate: +6.7% [-3.7%, 18.2%], "
        f"p = {b.p_adjusted:.2g} (Holm-adjusted); "
        f"no significant difference between c and a on click-through rate: +10% [-1%, 22%], "
        f"p = {c.p_adjusted:.2g} (Holm-adjusted)"
    )
    assert any("Holm" in note for note in report.notes)


def test_with_three_variants_a_clear_winner_still_wins():
    counts = [_variant("a", 30_000, 900, control=True), _variant("b", 30_000, 960),
              _variant("c", 30_000, 1100)]
    report = analyse(CTR, _totals(*counts))
    assert report.verdict.split("; ")[1].startswith("c beats a on click-through rate, +22% [")
    assert report.verdict.endswith("p < 0.001 (Holm-adjusted)")


def test_revenue_per_subject_uses_welchs_test():
    design = Design(metric="revenue", mde=0.5)
    counts = [_variant("a", 20_000, 0, control=True, revenue=20_000.0, squares=2_000_000.0),
              _variant("b", 20_000, 0, revenue=26_000.0, squares=2_600_000.0)]
    report = analyse(design, _totals(*counts))
    expected = compare_means(mean_estimate(26_000.0, 2_600_000.0, 20_000),
                             mean_estimate(20_000.0, 2_000_000.0, 20_000))
    assert report.primary()[0].comparison == expected
    assert report.verdict.startswith("b beats a on revenue per subject, +30% [")


def test_the_horizon_is_the_first_day_that_reaches_its_plan_and_later_days_do_not_count():
    # 1,000 subjects a day per variant at 3% and 3.05%: the plan (about 13,900) is reached
    # on day 13; from day 20 on, b suddenly clicks at 6%
    arms = [Arm("a", True), Arm("b")]
    calm = [[1000, 30, 0, 0, 0], [1000, 30.5, 0, 0, 0]]
    boom = [[1000, 30, 0, 0, 0], [1000, 60, 0, 0, 0]]
    planned = sample_size_for_rate(0.03, 0.2)
    assert 13_000 < planned <= 14_000
    report = analyse(CTR, _days(arms, [calm] * 20 + [boom] * 30, first_day=date(2026, 5, 1)))
    assert report.horizon_day == 13 and report.horizon_date == date(2026, 5, 14)
    assert report.plan.planned == {"a": planned, "b": planned} and not report.interim
    assert [(v.subjects, v.exposed) for v in report.variants] == [(14_000, 50_000)] * 2
    assert report.verdict.startswith("no significant difference between b and a")
    assert "2026-05-14" in report.notes[0]
    # every later look gives the same verdict
    for days in (14, 20, 35):
        assert analyse(CTR, _days(arms, ([calm] * 20 + [boom] * 30)[:days])).verdict == \
            report.verdict


def test_a_plan_reached_only_today_waits_for_the_day_to_end():
    arms = [Arm("a", True), Arm("b")]
    day = [[5000, 150, 0, 0, 0], [5000, 160, 0, 0, 0]]
    today = analyse(CTR, _days(arms, [day] * 3, last_day_partial=True))
    assert today.interim and today.plan.reached and today.horizon_day is None
    assert today.verdict == ("planned sample reached today: the verdict is given tomorrow, on "
                             "the complete day")
    tomorrow = analyse(CTR, _days(arms, [day] * 4, last_day_partial=True))
    assert tomorrow.horizon_day == 2


def test_a_bandit_skips_the_ratio_check_and_plans_equal_arms():
    design = Design(metric="ctr", mde=0.2, bandit=True)
    # a gets 1/6 of the 3,600 new subjects a day
    day = [[600, 18, 0, 0, 0], [3000, 120, 0, 0, 0]]
    report = analyse(design, _days([Arm("a", True), Arm("b")], [day] * 7))
    assert report.srm is None
    needed = sample_size_for_rate(0.03, 0.2)
    assert report.plan.planned == {"a": needed, "b": needed}
    assert report.plan.days_left == pytest.approx((needed - 4_200) / 600)
    assert any("Bandit" in note for note in report.notes)


@pytest.mark.parametrize(("design", "counts", "verdict"), [
    (CTR, [_variant("a", 0, 0, control=True), _variant("b", 0, 0)],
     "no data yet: no subject has been exposed"),
    (CTR, [_variant("a", 500, 0, control=True), _variant("b", 500, 3)],
     "not enough data: the control has no clicks yet, so the sample size cannot be planned"),
    (Design(metric="conversion"), [_variant("a", 500, 9, control=True), _variant("b", 500, 3)],
     "not enough data: the control has no conversions yet, so the sample size cannot be planned"),
    (Design(metric="revenue"), [_variant("a", 500, 9, control=True), _variant("b", 500, 3)],
     "not enough data: the control has no revenue yet, so the sample size cannot be planned"),
    (Design(metric="ctr", mde=1.0), [_variant("a", 500, 300, control=True), _variant("b", 500, 3)],
     "not enough data: a lift of 100% over the control's click-through rate of 60.0% would "
     "pass 100%: lower the minimum detectable effect"),
    (CTR, [_variant("a", 500, 9, control=True), _variant("b", 0, 0, weight=0.0)],
     "not enough data: a variant with a traffic weight of 0 never reaches a planned sample"),
])
def test_why_there_is_no_plan_yet(design, counts, verdict):
    report = analyse(design, _totals(*counts))
    assert report.plan is None and report.interim
    assert report.verdict == verdict


@pytest.mark.parametrize("counts", [
    [_variant("a", 10, 1, control=True)],
    [_variant("a", 10, 1, control=True), _variant("b", 10, 1, control=True)],
    [_variant("a", 10, 1), _variant("b", 10, 1)],
    [_variant("a", 10, 1, control=True), _variant("a", 10, 1)],
])
def test_malformed_experiments_are_refused(counts):
    with pytest.raises(ValueError):
        _totals(*counts)


def test_counts_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"shape \(days, 2, 5\)"):
        Timeline((Arm("a", True), Arm("b")), np.zeros((3, 2, 4)))
    empty = Timeline((Arm("a", True), Arm("b")), np.zeros(0))
    assert analyse(CTR, empty).verdict == "no data yet: no subject has been exposed"


def test_an_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="Unknown metric 'clicks'"):
        Design(metric="clicks")


def test_the_control_comes_first_and_the_report_is_plain_data():
    counts = [_variant("b", 2000, 70), _variant("a", 2000, 60, control=True)]
    report = analyse(CTR, _totals(*counts))
    assert [v.key for v in report.variants] == ["a", "b"]
    data = json.loads(json.dumps(report.as_dict()))
    assert data["horizon_date"] is None
    assert data["variants"][1]["ctr"]["rate"] == pytest.approx(0.035)
    assert data["comparisons"]["ctr"][0]["variant"] == "b"
