"""Recency weighting of a history: the latest interactions weigh most.

Shared by the strategies that fold a history in (EASE, item kNN) and by the
transitions strategy. A factor in ``(0, 1]`` per interaction halves every
``half_life`` interactions back from the last one and/or every
``half_life_days`` days back from the history's latest timestamp (the ages are
relative to the history itself, so an offline evaluation and a live request
weigh the same history the same way; serving's ``HISTORY_HALF_LIFE_HOURS``
decays by the age against the clock on top of it).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from personalize.dataset import SECONDS_PER_DAY
from personalize.strategies.history import History


def recency_factors(history: History, half_life: float | None = None,
                    half_life_days: float | None = None) -> np.ndarray:
    """The float64 factor of each interaction of ``history``, oldest first.

    Args:
        history: the interactions, oldest first.
        half_life: interactions back from the last one at which a factor is 1/2
            (the last interaction has 1); ``None``: no decay by position.
        half_life_days: days back from the latest timestamp at which a factor
            is 1/2; ``None``, or a history without timestamps: no decay by time.
    """
    n = len(history.item_ids)
    exponent = np.zeros(n)
    if half_life is not None and n:
        exponent += (n - 1 - np.arange(n)) / float(half_life)
    if half_life_days is not None and history.timestamps is not None and n:
        times = np.asarray(history.timestamps, dtype=np.float64)
        if times.size == n:
            exponent += (times.max() - times) / (float(half_life_days) * SECONDS_PER_DAY)
    return np.exp2(-exponent)


def with_recency(history: History, half_life: float | None = None,
                 half_life_days: float | None = None) -> History:
    """``history`` with its weights and recency multiplied by :func:`recency_factors`.

    Returns ``history`` itself when both half-lives are ``None``, so a strategy
    with the option off scores exactly as before. Both fields are scaled:
    :func:`~personalize.strategies.common.history_matrix` reads the weights, or
    the recency when a strategy ignores event weights (``binary``).
    """
    if half_life is None and half_life_days is None:
        return history
    factors = recency_factors(history, half_life, half_life_days)
    weights = (history.weight_array.astype(np.float64) * factors).tolist()
    recency = (factors if history.recency is None
               else np.asarray(history.recency, dtype=np.float64) * factors).tolist()
    return dataclasses.replace(history, weights=weights, recency=recency)


def check_half_lives(half_life: float | None, half_life_days: float | None,
                     prefix: str = "recency_") -> None:
    """Raise ``ValueError`` naming the option when a half-life is not positive."""
    for name, value in ((f"{prefix}half_life", half_life),
                        (f"{prefix}half_life_days", half_life_days)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{name} must be a positive number or None, got {value!r}")
