"""Ranking a score vector: the ``k`` best positions, as every strategy ranks."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first (ties by lower index).

    ``-inf`` marks excluded positions and is never returned.
    """
    k = min(k, int(np.count_nonzero(np.isfinite(scores))))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.flatnonzero(np.isfinite(scores))
    # lexsort: primary key -score, secondary key index, for deterministic ties
    order = np.lexsort((part, -scores[part]))
    return part[order]


def top_k_rows(scores: np.ndarray, k: int) -> list[np.ndarray]:
    """:func:`top_k` of each row of a ``(n_rows, n_items)`` score matrix.

    Row ``r`` of the result equals ``top_k(scores[r], k)``: the partition runs
    along each row with the same ``kth``, and the positions that are not
    finite, which a row with fewer than ``k`` finite scores has in its first
    ``k``, are dropped after the sort.
    """
    rows, n = scores.shape
    k = min(int(k), n)
    if k <= 0 or rows == 0:
        return [np.empty(0, dtype=np.int64) for _ in range(rows)]
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), (rows, n))
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    finite = np.isfinite(np.take_along_axis(values, order, axis=1))
    return [row[keep] for row, keep in zip(part, finite, strict=True)]
