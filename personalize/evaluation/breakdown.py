"""Results by training-history length: how a strategy does for newcomers and regulars.

A headline NDCG mixes subjects with one item of history and subjects with
hundreds; a strategy can win on average and still serve newcomers badly. The
runner splits each strategy's per-subject figures by the number of distinct
items in the subject's training history, in the buckets of
:data:`HISTORY_BUCKETS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from personalize.dataset import Dataset

#: ``(label, lowest, highest)`` history lengths of each bucket; ``None``: no upper bound.
HISTORY_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0), ("1-2", 1, 2), ("3-5", 3, 5), ("6-20", 6, 20), ("21+", 21, None),
)


def history_lengths(train: Dataset, rows: np.ndarray) -> np.ndarray:
    """Distinct items (interacted with or rated) in each subject's training history."""
    shape = (train.n_subjects, train.n_items)
    matrix = abs(sp.csr_array(train.interactions, shape=shape))
    if train.ratings is not None:
        matrix = matrix + abs(sp.csr_array(train.ratings, shape=shape))
    matrix = sp.csr_array(matrix)
    matrix.eliminate_zeros()
    return np.diff(matrix.indptr)[np.asarray(rows, dtype=np.int64)]


def bucket_of(lengths: np.ndarray) -> np.ndarray:
    """The index in :data:`HISTORY_BUCKETS` of each history length."""
    edges = np.array([low for _, low, _ in HISTORY_BUCKETS[1:]])
    return np.searchsorted(edges, np.asarray(lengths), side="right")


def by_history(per_subject: dict[str, np.ndarray], lengths: np.ndarray, k: int,
               runs: int = 1) -> dict[str, dict[str, Any]]:
    """Each metric's mean per history bucket, with the bucket's subject count.

    Args:
        per_subject: ``{metric: values}``, one value per subject (pooled over
            folds when ``runs > 1``).
        lengths: each subject's training-history length, aligned with the values.
        k: the cut-off, for the ``metric@k`` keys.
        runs: folds the values were pooled over; counts are per fold.

    Returns:
        ``{"0": {"subjects": n, "ndcg@k": ..., ...}, "1-2": ..., ...}``, every
        bucket present; a metric is ``None`` in a bucket with no subject.
    """
    buckets = bucket_of(lengths)
    counts = np.bincount(buckets, minlength=len(HISTORY_BUCKETS))
    sums = {name: np.bincount(buckets, weights=values, minlength=len(HISTORY_BUCKETS))
            for name, values in per_subject.items()}
    out: dict[str, dict[str, Any]] = {}
    for index, (label, _, _) in enumerate(HISTORY_BUCKETS):
        count = int(counts[index])
        entry: dict[str, Any] = {"subjects": round(count / runs)}
        for name, total in sums.items():
            entry[f"{name}@{k}"] = float(total[index] / count) if count else None
        out[label] = entry
    return out
