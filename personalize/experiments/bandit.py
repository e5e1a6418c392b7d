"""Thompson sampling: the share of traffic each variant of a bandit experiment gets.

Each variant's rate has the posterior Beta(1 + successes, 1 + failures) (a
uniform prior). A variant's share is the posterior probability that it is the
best one, estimated from ``draws`` joint samples of all the posteriors: the
traffic follows the evidence, and a variant that may still be best keeps some.
Every variant then keeps at least ``floor`` of the traffic, so a variant that
had bad luck early can recover, and the experiment keeps measuring every arm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def thompson_weights(
    successes: Sequence[int],
    trials: Sequence[int],
    floor: float,
    rng: np.random.Generator | None = None,
    draws: int = 20000,
) -> list[float]:
    """Each variant's share of traffic: its probability of being best, floored.

    Args:
        successes: per variant, the subjects who succeeded on the metric.
        trials: per variant, the subjects exposed (``successes <= trials``).
        floor: the smallest share any variant keeps. A floor above
            ``1 / len(trials)`` cannot hold for every variant: the shares are then equal.
        rng: the generator the posterior samples come from (seed it for a
            reproducible allocation); a fresh unseeded one by default.
        draws: joint posterior samples; the shares' Monte Carlo error is about
            ``sqrt(share / draws)``.

    Returns:
        One share per variant, in the order given, each ``>= floor`` (up to
        the equal-share case), summing to 1.

    Raises:
        ValueError: mismatched or empty inputs, negative counts, more
            successes than trials, a negative floor or fewer than one draw.
    """
    wins = np.asarray(successes, dtype=np.float64)
    counts = np.asarray(trials, dtype=np.float64)
    if wins.ndim != 1 or wins.shape != counts.shape or wins.size == 0:
        raise ValueError("Need one success count per trial count, for at least one variant.")
    if (wins < 0).any() or (wins > counts).any():
        raise ValueError("Need 0 <= successes <= trials for every variant.")
    if not floor >= 0:
        raise ValueError(f"The floor cannot be negative, got {floor}.")
    if draws < 1:
        raise ValueError(f"Need at least one draw, got {draws}.")
    generator = rng if rng is not None else np.random.default_rng()
    samples = generator.beta(1.0 + wins, 1.0 + counts - wins, size=(draws, wins.size))
    best = np.bincount(samples.argmax(axis=1), minlength=wins.size)
    return apply_floor(best / draws, floor).tolist()


def apply_floor(shares: np.ndarray, floor: float) -> np.ndarray:
    """``shares`` with every entry raised to at least ``floor``, the rest scaled down.

    The entries under the floor are set to it; the others keep their
    proportions and share what is left. Raising some entries can push a
    scaled entry under the floor in turn, so this repeats until none is (at
    most once per entry).
    """
    values = np.asarray(shares, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or (values < 0).any():
        raise ValueError("Need a non-empty vector of non-negative shares.")
    size = values.size
    floor = min(float(floor), 1.0 / size)
    total = values.sum()
    values = values / total if total > 0 else np.full(size, 1.0 / size)
    floored = np.zeros(size, dtype=bool)
    while True:
        result = np.full(size, floor)
        free = ~floored
        left = 1.0 - floor * floored.sum()
        free_total = values[free].sum()
        result[free] = (values[free] / free_total * left if free_total > 0
                        else left / free.sum())
        # a small tolerance: an entry exactly at the floor must not loop forever
        under = free & (result < floor - 1e-12)
        if not under.any():
            return result
        floored |= under
