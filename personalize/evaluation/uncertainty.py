"""Bootstrap intervals over subjects, and which strategies are tied with the best.

A difference of 0.003 NDCG between two strategies on 900 subjects is noise;
the report says so. Every interval comes from one set of resamples of the
evaluated subjects (seeded), shared by all strategies, so the difference of
two strategies is a *paired* bootstrap: both are measured on the same
resampled subjects. A resample is a vector of counts per subject, and every
mean over it is a matrix product, so ``B`` resamples of every metric of every
strategy cost a few matrix multiplications, no loop per resample.
"""

from __future__ import annotations

import numpy as np

#: Resamples by default.
DEFAULT_RESAMPLES = 1000

#: Resample-count cells built at once (bounds memory on large sites).
_BLOCK_CELLS = 4_000_000


def resampled_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """The mean of each row of ``values`` over ``resamples`` bootstrap resamples.

    Args:
        values: ``(rows, n)``: one row per figure (strategy and metric), one
            column per subject; every row is resampled with the same draws.
        resamples: the number of resamples ``B``.
        seed: seeds the draws; the same seed gives the same means.

    Returns:
        ``(rows, B)`` resampled means (NaN when there is no subject).
    """
    values = np.asarray(values, dtype=np.float64)
    rows, n = values.shape
    if n == 0:
        return np.full((rows, resamples), np.nan)
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n)
    out = np.empty((rows, resamples))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        draws = rng.integers(0, n, size=(size, n)) + (np.arange(size)[:, None] * n)
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
        out[:, start:start + size] = values @ counts.T / n
    return out


def interval(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """The percentile interval over the last axis: ``(..., 2)`` of ``[low, high]``."""
    tail = 100.0 * (1.0 - level) / 2.0
    return np.moveaxis(np.percentile(samples, [tail, 100.0 - tail], axis=-1), 0, -1)


def tied_with(samples: np.ndarray, best: int, level: float = 0.95) -> np.ndarray:
    """Rows whose paired difference to row ``best`` has an interval containing 0.

    Args:
        samples: ``(strategies, B)`` resampled means of one metric, from the
            same draws.
        best: the row of the best strategy (it is tied with itself).
        level: the interval's coverage.
    """
    low, high = np.moveaxis(interval(samples - samples[best], level), -1, 0)
    return (low <= 0.0) & (high >= 0.0)
