"""Deterministic traffic splitting: a subject's bucket and the variant it falls in.

The same (salt, subject key) always gives the same bucket, so a subject sees
the same variant on every request and in every process, with nothing stored;
each experiment has its own salt, so the splits of two experiments are
independent of each other.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

#: 2 ** 64: the bucket is the first 8 bytes of a SHA-256 digest scaled to [0, 1).
_SCALE = float(1 << 64)


def bucket(salt: str, key: str) -> float:
    """A number in [0, 1) that is uniform over keys and fixed for (``salt``, ``key``)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def choose(weights: Sequence[float], u: float) -> int:
    """The index of the weight whose share of the cumulative total holds ``u``.

    Args:
        weights: non-negative weights, at least one positive (normalised here).
        u: a bucket in [0, 1).

    Raises:
        ValueError: no positive weight, or a negative one.
    """
    if any(w < 0 for w in weights):
        raise ValueError(f"Negative traffic weight in {list(weights)}.")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("At least one variant needs a positive traffic weight.")
    bounds = [edge / total for edge in accumulate(weights)]
    # bisect_right: a bucket on an edge belongs to the next interval; zero-weight
    # variants have empty intervals and are never chosen
    index = bisect_right(bounds, u)
    return min(index, len(weights) - 1)
