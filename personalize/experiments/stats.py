"""The statistics of an experiment: pure functions on counts, sums and sums of squares.

Every test statistic, p-value and interval comes from scipy or statsmodels. This
module chooses the method, guards the degenerate cases (no subjects, a rate of 0
or 1, no spread) by answering ``None`` instead of a number that means nothing,
and returns typed results. docs/experiments.md explains each choice.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, normal_sample_size_one_tail
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

#: Below this many expected subjects in some variant, the chi-square
#: approximation behind the sample-ratio check is not trusted (Cochran's rule).
SRM_MIN_EXPECTED = 5
#: The sample-ratio check flags a split this unlikely under the planned shares.
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval."""

    low: float
    high: float

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the interval."""
        return value < self.low or value > self.high


@dataclass(frozen=True)
class RateEstimate:
    """The share of ``n`` subjects with ``successes``, with its Wilson interval."""

    successes: int
    n: int
    rate: float | None
    interval: Interval | None


@dataclass(frozen=True)
class MeanEstimate:
    """The mean of a per-subject value (revenue), its sample sd and t interval."""

    n: int
    mean: float | None
    sd: float | None
    interval: Interval | None


@dataclass(frozen=True)
class Comparison:
    """A variant against the control on one metric.

    ``lift`` is relative (``value / control - 1``), ``interval`` its confidence
    interval; ``p_value`` is that of the test of no difference. Each is ``None``
    where the data cannot define it (a control at 0, no spread, no subjects).
    """

    control: float | None
    value: float | None
    lift: float | None
    interval: Interval | None
    p_value: float | None


@dataclass(frozen=True)
class SampleRatioCheck:
    """The chi-square test of the subjects per variant against the planned shares."""

    observed: tuple[int, ...]
    expected_shares: tuple[float, ...]
    p_value: float
    mismatch: bool


def _finite(*values: object) -> bool:
    """Whether every value is a real, finite number (statsmodels answers NaN or complex)."""
    return all(
        isinstance(v, int | float | np.floating | np.integer) and math.isfinite(float(v))
        for v in values
    )


def _interval(low: object, high: object) -> Interval | None:
    if not _finite(low, high):
        return None
    return Interval(float(low), float(high))  # type: ignore[arg-type]


def rate_estimate(successes: int, n: int, *, alpha: float = 0.05) -> RateEstimate:
    """The rate ``successes / n`` with its Wilson score interval.

    Wilson's interval keeps its coverage near 0 and for small ``n``, where the
    normal (Wald) interval collapses to a point or leaves [0, 1].
    """
    _check_counts(successes, n)
    if n == 0:
        return RateEstimate(successes, n, None, None)
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return RateEstimate(successes, n, successes / n, _interval(low, high))


def mean_estimate(total: float, total_squares: float, n: int, *,
                  alpha: float = 0.05) -> MeanEstimate:
    """The mean of a per-subject value from its sum and sum of squares, with a t interval.

    Args:
        total: the sum of the values over the ``n`` subjects.
        total_squares: the sum of their squares.
        n: the number of subjects (zeros included).
        alpha: one minus the interval's confidence level.
    """
    if n < 0:
        raise ValueError(f"A count cannot be negative, got n={n}.")
    if n == 0:
        return MeanEstimate(0, None, None, None)
    mean = total / n
    if n == 1:
        return MeanEstimate(1, mean, None, None)
    # sum of squared deviations; clamped because float cancellation can dip below 0
    variance = max((total_squares - total * mean) / (n - 1), 0.0)
    sd = math.sqrt(variance)
    if sd == 0.0:
        return MeanEstimate(n, mean, 0.0, Interval(mean, mean))
    low, high = stats.t.interval(1.0 - alpha, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return MeanEstimate(n, mean, sd, _interval(low, high))


def compare_rates(successes: int, n: int, control_successes: int, control_n: int, *,
                  alpha: float = 0.05) -> Comparison:
    """A variant's rate against the control's: two-proportion z-test and the lift's interval.

    The p-value is the pooled two-proportion z-test's
    (``statsmodels.stats.proportion.proportions_ztest``). The interval of the
    relative lift is the score interval of the ratio of the two rates
    (``confint_proportions_2indep(compare="ratio", method="score")``), minus 1:
    it inverts the same score statistic, so it excludes 0 exactly when the
    test rejects at ``alpha`` (checked in the tests).
    """
    _check_counts(successes, n)
    _check_counts(control_successes, control_n)
    value = successes / n if n else None
    control = control_successes / control_n if control_n else None
    if not n or not control_n:
        return Comparison(control, value, None, None, None)
    pooled = successes + control_successes
    p_value: float | None = None
    if 0 < pooled < n + control_n:  # otherwise both rates are 0 (or 1): nothing to test
        _, p = proportions_ztest([successes, control_successes], [n, control_n])
        p_value = float(p) if _finite(p) else None
    if not control_successes:  # a lift over a rate of 0 is not a number
        return Comparison(control, value, None, None, p_value)
    lift = value / control - 1.0  # type: ignore[operator]
    interval = None
    if p_value is not None:
        with warnings.catch_warnings():
            # a rate of 1 in one group makes statsmodels divide by 0 on the way to
            # an interval it then reports as NaN or complex: treated as no interval
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = confint_proportions_2indep(
                successes, n, control_successes, control_n, method="score",
                compare="ratio", alpha=alpha, correction=False,
            )
        bounds = _interval(low, high)
        if bounds is not None:
            interval = Interval(max(bounds.low, 0.0) - 1.0, bounds.high - 1.0)
    return Comparison(control, value, lift, interval, p_value)


def compare_means(variant: MeanEstimate, control: MeanEstimate, *,
                  alpha: float = 0.05) -> Comparison:
    """A variant's mean against the control's: Welch's t-test and the lift's interval.

    The p-value is Welch's unequal-variance t-test on the two means, sds and
    sizes (``scipy.stats.ttest_ind_from_stats(equal_var=False)``). The
    relative lift ``m / m0 - 1`` gets a delta-method interval: its standard
    error is ``sqrt(s^2 / (n m0^2) + m^2 s0^2 / (n0 m0^4))``, with the normal
    quantile (``scipy.stats.norm.interval``); both groups are large wherever
    a verdict is given, so the normal approximation of the ratio holds.
    """
    value, base = variant.mean, control.mean
    if value is None or base is None:
        return Comparison(base, value, None, None, None)
    p_value: float | None = None
    if variant.sd is not None and control.sd is not None and (variant.sd or control.sd):
        _, p = stats.ttest_ind_from_stats(
            value, variant.sd, variant.n, base, control.sd, control.n, equal_var=False
        )
        p_value = float(p) if _finite(p) else None
    if base == 0.0:
        return Comparison(base, value, None, None, p_value)
    lift = value / base - 1.0
    interval = None
    if variant.sd is not None and control.sd is not None:
        se = math.sqrt(variant.sd**2 / (variant.n * base**2)
                       + value**2 * control.sd**2 / (control.n * base**4))
        if se > 0:
            interval = _interval(*stats.norm.interval(1.0 - alpha, loc=lift, scale=se))
    return Comparison(base, value, lift, interval, p_value)


def sample_ratio_check(observed: Sequence[int], expected_shares: Sequence[float], *,
                       threshold: float = SRM_THRESHOLD) -> SampleRatioCheck | None:
    """Whether the subjects per variant fit the planned split (sample-ratio mismatch).

    A chi-square goodness-of-fit test (``scipy.stats.chisquare``) of the
    observed counts against ``expected_shares`` (normalised here); flagged when
    its p-value is below ``threshold`` (0.001: a mismatch means a broken
    assignment or logging, so the check must almost never cry wolf). A variant
    planned at 0% is left out while it has no subjects; one that has subjects
    anyway is a mismatch whatever the test says (p-value 0).

    Returns:
        ``None`` while some variant expects fewer than ``SRM_MIN_EXPECTED``
        subjects, where the chi-square approximation does not hold.
    """
    counts = np.asarray(observed, dtype=np.float64)
    shares = np.asarray(expected_shares, dtype=np.float64)
    if counts.shape != shares.shape or counts.ndim != 1:
        raise ValueError("One expected share per observed count is needed.")
    if (counts < 0).any() or (shares < 0).any() or shares.sum() <= 0:
        raise ValueError("Counts and shares cannot be negative; some share must be positive.")
    result = (tuple(int(c) for c in counts), tuple(float(s) for s in shares / shares.sum()))
    planned = shares > 0
    if counts[~planned].any():
        return SampleRatioCheck(*result, p_value=0.0, mismatch=True)
    expected = shares[planned] / shares[planned].sum() * counts.sum()
    if planned.sum() < 2 or expected.min() < SRM_MIN_EXPECTED:
        return None
    p_value = float(stats.chisquare(counts[planned], expected).pvalue)
    return SampleRatioCheck(*result, p_value=p_value, mismatch=p_value < threshold)


def sample_size_for_rate(baseline: float, mde: float, *, alpha: float = 0.05,
                         power: float = 0.8, ratio: float = 1.0) -> int | None:
    """Subjects the control needs to detect a relative change ``mde`` of a rate.

    Cohen's arcsine effect size (``proportion_effectsize``) between
    ``baseline * (1 + mde)`` and ``baseline``, for a two-sided test at
    ``alpha`` and ``power``: ``statsmodels.stats.power.normal_sample_size_one_tail``
    at ``alpha / 2``: the explicit form of what ``NormalIndPower.solve_power``
    finds by root search, without the far tail's share of the power. It is
    therefore never smaller: the same number at alpha 0.05 and power 0.8, at
    most about 2% more at the loosest settings an experiment allows (alpha
    0.2, power 0.5). It costs microseconds instead of milliseconds, and the
    report plans once per day of the experiment.

    Args:
        baseline: the control's rate.
        mde: the minimum detectable effect, relative (0.1 for +10%).
        alpha: the significance level of the test.
        power: the probability of detecting an effect of size ``mde``.
        ratio: the variant's subjects per control subject; it needs
            ``ceil(n * ratio)``.

    Returns:
        ``None`` where no such sample exists: a baseline of 0 or 1, or a
        target rate of 100% or more.
    """
    _check_plan(alpha, power, ratio)
    target = baseline * (1.0 + mde)
    if not 0.0 < baseline < 1.0 or not 0.0 < target < 1.0 or mde <= 0:
        return None
    effect = abs(float(proportion_effectsize(target, baseline)))
    # arcsine units: each group's estimate has variance 1 / n, the difference 1/n1 + 1/n2
    n = normal_sample_size_one_tail(effect, power, alpha / 2.0,
                                    std_null=math.sqrt(1.0 + 1.0 / ratio))
    return _whole(n)


def sample_size_for_mean(mean: float, sd: float, mde: float, *, alpha: float = 0.05,
                         power: float = 0.8, ratio: float = 1.0) -> int | None:
    """Subjects the control needs to detect a relative change ``mde`` of a mean.

    The standardised effect ``mde * mean / sd`` (the control's sd stands for
    both groups), solved by ``statsmodels.stats.power.TTestIndPower``.

    Returns:
        ``None`` where the control's mean or sd is 0 (nothing to scale by).
    """
    _check_plan(alpha, power, ratio)
    if mean <= 0 or sd <= 0 or mde <= 0:
        return None
    n = TTestIndPower().solve_power(effect_size=mde * mean / sd, nobs1=None, alpha=alpha,
                                    power=power, ratio=ratio, alternative="two-sided")
    return _whole(n)


def _check_plan(alpha: float, power: float, ratio: float) -> None:
    if not 0 < alpha < 1 or not 0 < power < 1 or ratio <= 0:
        raise ValueError(f"alpha and power lie in (0, 1) and ratio > 0, got "
                         f"alpha={alpha}, power={power}, ratio={ratio}.")


def _whole(n: float | np.ndarray) -> int | None:
    value = float(np.squeeze(n))
    return math.ceil(value) if math.isfinite(value) and value > 0 else None


def holm(p_values: Sequence[float | None], *, alpha: float = 0.05) -> list[float | None]:
    """Holm-adjusted p-values of a family of tests (``multipletests(method="holm")``).

    A test without a p-value (``None``) still counts in the family, as a test
    that rejects nothing (p = 1), and stays ``None``.
    """
    if len(p_values) <= 1:
        return list(p_values)
    raw = [1.0 if p is None else p for p in p_values]
    _, adjusted, _, _ = multipletests(raw, alpha=alpha, method="holm")
    return [None if p is None else float(a) for p, a in zip(p_values, adjusted, strict=True)]


def _check_counts(successes: int, n: int) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"Need 0 <= successes <= n, got successes={successes}, n={n}.")
