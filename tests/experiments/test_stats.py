"""Each statistic against a textbook value or one computed here from scipy's distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from personalize.experiments.stats import (
    Interval,
    compare_means,
    compare_rates,
    holm,
    mean_estimate,
    rate_estimate,
    sample_ratio_check,
    sample_size_for_mean,
    sample_size_for_rate,
)

Z = stats.norm.ppf(0.975)


def test_wilson_interval_matches_newcombes_worked_example():
    # Newcombe (1998), Statistics in Medicine 17:857, example 81/263: 0.2553 to 0.3662
    estimate = rate_estimate(81, 263)
    assert estimate.rate == pytest.approx(81 / 263)
    assert estimate.interval.low == pytest.approx(0.2553, abs=5e-5)
    assert estimate.interval.high == pytest.approx(0.3662, abs=5e-5)


@pytest.mark.parametrize(("successes", "n"), [(0, 20), (3, 1000), (50, 50), (120, 4000)])
def test_wilson_interval_matches_its_formula(successes, n):
    p = successes / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    interval = rate_estimate(successes, n).interval
    assert interval.low == pytest.approx(centre - half, abs=1e-12)
    assert interval.high == pytest.approx(centre + half, abs=1e-12)


def test_a_rate_of_nobody_is_undefined():
    assert rate_estimate(0, 0).rate is None and rate_estimate(0, 0).interval is None
    with pytest.raises(ValueError, match="successes <= n"):
        rate_estimate(5, 4)


def test_mean_and_t_interval_from_sums_match_the_raw_data():
    values = np.random.default_rng(3).lognormal(2.0, 1.0, 500) * (np.arange(500) % 7 == 0)
    estimate = mean_estimate(values.sum(), (values**2).sum(), len(values))
    sd = values.std(ddof=1)
    half = stats.t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values))
    assert estimate.mean == pytest.approx(values.mean())
    assert estimate.sd == pytest.approx(sd)
    assert estimate.interval.low == pytest.approx(values.mean() - half)
    assert estimate.interval.high == pytest.approx(values.mean() + half)


def test_mean_of_too_few_subjects_has_no_interval():
    assert mean_estimate(0.0, 0.0, 0).mean is None
    one = mean_estimate(5.0, 25.0, 1)
    assert one.mean == 5.0 and one.sd is None and one.interval is None
    flat = mean_estimate(0.0, 0.0, 10)
    assert flat.sd == 0.0 and flat.interval == Interval(0.0, 0.0)


def test_two_proportion_z_test_matches_the_pooled_formula():
    x1, n1, x2, n2 = 130, 3000, 100, 3100
    pooled = (x1 + x2) / (n1 + n2)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    result = compare_rates(x1, n1, x2, n2)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert result.lift == pytest.approx((x1 / n1) / (x2 / n2) - 1)
    assert result.value == pytest.approx(x1 / n1) and result.control == pytest.approx(x2 / n2)


def _score_ratio_interval(x1: int, n1: int, x2: int, n2: int, z: float) -> tuple[float, float]:
    """The score interval of p1 / p2 (Miettinen & Nurminen without their n / (n - 1) factor).

    Inverts the score statistic with the maximum-likelihood rates constrained to
    p1 = r p2 (the root of a quadratic, Miettinen & Nurminen 1985, eq. 29).
    """
    n = n1 + n2

    def score(r: float) -> float:
        a = n * r
        b = -(n1 * r + x1 + n2 + x2 * r)
        c = x1 + x2
        p2 = (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a)
        p1 = r * p2
        var = p1 * (1 - p1) / n1 + r * r * p2 * (1 - p2) / n2
        return (x1 / n1 - r * x2 / n2) / math.sqrt(var)

    ratio = (x1 / n1) / (x2 / n2)
    low = optimize.brentq(lambda r: score(r) - z, 1e-6, ratio)
    high = optimize.brentq(lambda r: score(r) + z, ratio, 1e3)
    return low, high


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"),
                         [(130, 3000, 100, 3100), (12, 400, 20, 380), (45, 900, 44, 910)])
def test_lift_interval_is_the_score_interval_of_the_ratio_minus_one(x1, n1, x2, n2):
    low, high = _score_ratio_interval(x1, n1, x2, n2, Z)
    interval = compare_rates(x1, n1, x2, n2).interval
    assert interval.low == pytest.approx(low - 1, abs=1e-6)
    assert interval.high == pytest.approx(high - 1, abs=1e-6)


def test_lift_interval_excludes_zero_exactly_when_the_z_test_rejects():
    rng = np.random.default_rng(7)
    disagreements = 0
    for _ in range(400):
        n1, n2 = rng.integers(100, 5000, 2)
        p = rng.uniform(0.01, 0.3)
        x1, x2 = rng.binomial(n1, p * rng.uniform(0.8, 1.3)), rng.binomial(n2, p)
        if not x2:
            continue
        result = compare_rates(int(x1), int(n1), int(x2), int(n2))
        disagreements += (result.p_value < 0.05) != result.interval.excludes(0.0)
    assert disagreements == 0


def test_rates_at_zero_have_no_lift_and_no_test():
    nothing = compare_rates(0, 100, 0, 100)
    assert nothing.p_value is None and nothing.lift is None and nothing.interval is None
    over_zero = compare_rates(5, 100, 0, 100)
    assert over_zero.lift is None and over_zero.p_value is not None
    below = compare_rates(0, 100, 5, 100)
    assert below.lift == -1.0 and below.interval.low == -1.0 and below.interval.high < 0
    empty = compare_rates(0, 0, 5, 100)
    assert empty.value is None and empty.p_value is None


def test_welch_test_from_sums_matches_scipy_on_the_raw_data():
    rng = np.random.default_rng(11)
    a = rng.lognormal(3.0, 1.0, 800) * (rng.random(800) < 0.05)
    b = rng.lognormal(3.0, 1.0, 900) * (rng.random(900) < 0.03)
    result = compare_means(mean_estimate(a.sum(), (a**2).sum(), len(a)),
                           mean_estimate(b.sum(), (b**2).sum(), len(b)))
    assert result.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert result.lift == pytest.approx(a.mean() / b.mean() - 1)


def test_delta_method_lift_interval_covers_the_true_lift_95_percent_of_the_time():
    # revenue per subject: 4% buyers, log-normal baskets; the variant's true lift is +20%
    rng = np.random.default_rng(5)
    reps, n, mean_basket = 1000, 4000, math.exp(3.0 + 0.5)

    def sample(rate: float) -> np.ndarray:
        return rng.lognormal(3.0, 1.0, (reps, n)) * (rng.random((reps, n)) < rate)

    a, b = sample(0.048), sample(0.04)
    true_lift = (0.048 * mean_basket) / (0.04 * mean_basket) - 1
    covered = 0
    for row_a, row_b in zip(a, b, strict=True):
        interval = compare_means(
            mean_estimate(row_a.sum(), (row_a**2).sum(), n),
            mean_estimate(row_b.sum(), (row_b**2).sum(), n)).interval
        covered += interval.low <= true_lift <= interval.high
    assert 0.93 <= covered / reps <= 0.97  # 95% +- 2.9 standard errors


def test_means_without_spread_or_a_control_have_no_test():
    flat = mean_estimate(0.0, 0.0, 50)
    assert compare_means(flat, flat).p_value is None
    some = mean_estimate(100.0, 10_000.0, 50)
    assert compare_means(some, flat).lift is None
    assert compare_means(mean_estimate(0, 0, 0), some).value is None


def test_sample_ratio_check_is_pearsons_chi_square():
    observed, shares = [10_400, 9_600], [0.5, 0.5]
    expected = np.array(shares) * sum(observed)
    statistic = ((np.array(observed) - expected) ** 2 / expected).sum()
    check = sample_ratio_check(observed, shares)
    assert check.p_value == pytest.approx(stats.chi2.sf(statistic, 1))
    assert check.mismatch  # 52/48 at 20,000
    assert not sample_ratio_check([10_050, 9_950], [1, 1]).mismatch
    assert sample_ratio_check([3000, 1000], [3, 1]).p_value == pytest.approx(1.0)


def test_sample_ratio_check_waits_for_enough_subjects_and_refuses_bad_input():
    assert sample_ratio_check([3, 4], [1, 1]) is None
    assert sample_ratio_check([300, 400, 0], [1, 1, 0]) is not None  # a 0% variant left out
    assert sample_ratio_check([300, 400, 2], [1, 1, 0]).mismatch  # ... unless it has subjects
    with pytest.raises(ValueError):
        sample_ratio_check([1, 2], [1])
    with pytest.raises(ValueError):
        sample_ratio_check([1, 2], [0, 0])


def test_sample_size_for_a_rate_matches_cohens_table_and_formula():
    # Cohen (1988), table 6.4.1: h = 0.2 needs 392 per group at alpha 0.05 two-sided, power 0.8
    baseline = 0.5
    target = math.sin(math.asin(math.sqrt(baseline)) + 0.1) ** 2  # 2 asin sqrt: h = 0.2
    n = sample_size_for_rate(baseline, target / baseline - 1)
    assert abs(n - 392) <= 1
    h = 2 * math.asin(math.sqrt(0.04)) - 2 * math.asin(math.sqrt(0.03))
    formula = 2 * (Z + stats.norm.ppf(0.8)) ** 2 / h**2
    assert sample_size_for_rate(0.03, 1 / 3) == math.ceil(formula)
    # unequal groups: the control needs (1 + 1 / ratio) / 2 as many per unit of precision
    uneven = sample_size_for_rate(0.03, 1 / 3, ratio=3.0)
    assert abs(uneven - math.ceil(formula * (1 + 1 / 3) / 2)) <= 1


@pytest.mark.parametrize(("alpha", "power"), [(0.05, 0.8), (0.01, 0.9), (0.2, 0.5), (0.001, 0.99)])
@pytest.mark.parametrize(("baseline", "mde", "ratio"), [(0.03, 0.1, 1.0), (0.3, 0.5, 2.0)])
def test_sample_size_for_a_rate_follows_normal_ind_power(alpha, power, baseline, mde, ratio):
    effect = abs(proportion_effectsize(baseline * (1 + mde), baseline))
    root = NormalIndPower().solve_power(effect, alpha=alpha, power=power, ratio=ratio)
    n = sample_size_for_rate(baseline, mde, alpha=alpha, power=power, ratio=ratio)
    # the same sample where tests are usually run; never fewer, at most ~2% more elsewhere
    assert math.ceil(root) <= n <= math.ceil(root * 1.025)
    if (alpha, power) == (0.05, 0.8):
        assert n == math.ceil(root)


def test_sample_size_for_a_mean_matches_cohens_table():
    # Cohen (1988), table 2.4.1: d = 0.5 needs 64 per group
    assert sample_size_for_mean(mean=10.0, sd=20.0, mde=1.0) == 64


@pytest.mark.parametrize(("baseline", "mde"), [(0.0, 0.1), (1.0, 0.1), (0.6, 1.0), (0.1, 0.0)])
def test_no_sample_size_where_none_exists(baseline, mde):
    assert sample_size_for_rate(baseline, mde) is None
    assert sample_size_for_mean(0.0, 1.0, 0.1) is None
    assert sample_size_for_mean(1.0, 0.0, 0.1) is None


def test_holm_with_three_comparisons_matches_the_step_down_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == [0.2]
    adjusted = holm([0.01, None, 0.03])
    assert adjusted[1] is None
    assert adjusted[0] == pytest.approx(0.03) and adjusted[2] == pytest.approx(0.06)
