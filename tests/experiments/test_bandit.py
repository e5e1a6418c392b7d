"""Thompson sampling: probability of being best, the floor, the normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from personalize.experiments.bandit import apply_floor, thompson_weights


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_shares_are_the_probability_of_being_best():
    # P(B > A) for independent Beta posteriors, integrated numerically: f_B(x) F_A(x) dx
    a, b = stats.beta(1 + 40, 1 + 960), stats.beta(1 + 55, 1 + 945)
    reference, _ = integrate.quad(lambda x: b.pdf(x) * a.cdf(x), 0, 1, points=[0.04, 0.055])
    draws = 200_000
    shares = thompson_weights([40, 55], [1000, 1000], floor=0.0, rng=_rng(), draws=draws)
    tolerance = 4 * math.sqrt(reference * (1 - reference) / draws)
    assert shares[1] == pytest.approx(reference, abs=tolerance)
    assert shares[0] == pytest.approx(1 - shares[1])


def test_the_better_arm_gets_the_traffic_and_the_others_keep_the_floor():
    shares = thompson_weights([300, 400, 500], [10_000] * 3, floor=0.05, rng=_rng())
    assert shares == pytest.approx([0.05, 0.05, 0.9])
    assert sum(shares) == pytest.approx(1.0)


def test_equal_evidence_splits_evenly_and_no_data_too():
    for successes, trials in (([30, 30, 30], [1000] * 3), ([0, 0], [0, 0])):
        shares = thompson_weights(successes, trials, floor=0.0, rng=_rng(), draws=50_000)
        assert shares == pytest.approx([1 / len(trials)] * len(trials), abs=0.015)


def test_shares_are_reproducible_with_a_seeded_generator():
    first = thompson_weights([10, 14], [200, 210], 0.1, rng=_rng(42))
    assert first == thompson_weights([10, 14], [200, 210], 0.1, rng=_rng(42))


@pytest.mark.parametrize("floor", [0.0, 0.05, 0.2, 1 / 3])
def test_every_arm_keeps_the_floor_and_shares_sum_to_one(floor):
    shares = thompson_weights([2, 40, 90], [1000, 1000, 1000], floor, rng=_rng())
    assert sum(shares) == pytest.approx(1.0)
    assert min(shares) >= floor - 1e-12


def test_a_floor_above_an_equal_share_gives_equal_shares():
    assert thompson_weights([0, 900], [1000, 1000], 0.5, rng=_rng()) == pytest.approx([0.5, 0.5])
    assert apply_floor(np.array([0.9, 0.1, 0.0]), 0.4) == pytest.approx([1 / 3] * 3)


def test_raising_one_arm_to_the_floor_can_push_another_under_it():
    # 0.19 and 0.01 go to 0.2 first; scaling 0.6 and 0.2 into the 0.6 left puts 0.2 at 0.15
    assert apply_floor(np.array([0.6, 0.2, 0.19, 0.01]), 0.2) == pytest.approx([0.4, 0.2, 0.2, 0.2])
    assert apply_floor(np.array([0.9, 0.08, 0.02]), 0.05) == pytest.approx(
        [0.9 / 0.98 * 0.95, 0.08 / 0.98 * 0.95, 0.05])
    assert apply_floor(np.array([2.0, 2.0]), 0.0) == pytest.approx([0.5, 0.5])  # normalised


@pytest.mark.parametrize(("successes", "trials", "floor", "draws"), [
    ([1, 2], [10], 0.0, 100),
    ([], [], 0.0, 100),
    ([11], [10], 0.0, 100),
    ([-1], [10], 0.0, 100),
    ([1], [10], -0.1, 100),
    ([1], [10], 0.0, 0),
])
def test_bad_input_is_refused(successes, trials, floor, draws):
    with pytest.raises(ValueError):
        thompson_weights(successes, trials, floor, rng=_rng(), draws=draws)
