"""Offline metrics over a matrix of recommended item indices.

Every ranking metric reads a ``(n_subjects, k)`` integer matrix of item
indices, best first, padded with ``-1`` where a strategy returned fewer than
``k`` items, and a ``(n_subjects, n_items)`` CSR of held-out relevant items
whose rows line up with the matrix. Relevance is binary (every held-out item
the subject preferred counts). All of it is vectorised NumPy: one pass over the
matrix, no loop per subject or per item.

With ``rel[u, j]`` = 1 when the item at position ``j`` (1-based) of subject
``u``'s list is relevant and ``R_u`` the subject's relevant set:

* precision@k = sum_j rel / k
* recall@k = sum_j rel / |R_u|
* ndcg@k = (sum_j rel / log2(j + 1)) / (sum_{j <= min(|R_u|, k)} 1 / log2(j + 1))
* map@k = (sum_j rel[u, j] * precision@j) / min(|R_u|, k)
* hit_rate@k = 1 if any rel else 0
* mrr@k = 1 / (first j with rel = 1), 0 if none

Each is averaged over the subjects that have at least one relevant item.
Padding positions count as misses, so a strategy that says nothing scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

#: The ranking metrics :func:`ranking_metrics` returns, in report order.
RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")

#: Users per block when gathering item features for diversity (bounds memory).
_DIVERSITY_BLOCK = 512


def _check_recs(recs: np.ndarray, k: int) -> np.ndarray:
    recs = np.asarray(recs)
    if recs.ndim != 2:
        raise ValueError(f"recs must be a 2-d (n_subjects, k) matrix, got shape {recs.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not np.issubdtype(recs.dtype, np.integer):
        raise ValueError(f"recs must hold integer item indices, got dtype {recs.dtype}")
    recs = recs[:, :k].astype(np.int64, copy=False)
    if recs.shape[1] > 1:
        ordered = np.sort(recs, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
        if repeated.any():
            row = int(np.flatnonzero(repeated.any(axis=1))[0])
            raise ValueError(f"Row {row} of recs repeats an item; a list names each item once.")
    return recs


def hits(recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int) -> np.ndarray:
    """A ``(n_subjects, k)`` boolean matrix, true where the listed item is relevant.

    Args:
        recs: recommended item indices, best first, ``-1`` padded.
        relevant: held-out relevance, one row per row of ``recs``; any stored
            positive value marks an item relevant.
        k: the cut-off; columns past ``k`` are ignored.

    Returns:
        The hit matrix, ``False`` at padding positions.
    """
    recs = _check_recs(recs, k)
    relevant = sp.csr_array(relevant)
    if relevant.shape[0] != recs.shape[0]:
        raise ValueError(
            f"relevant has {relevant.shape[0]} rows but recs has {recs.shape[0]}; "
            "they must describe the same subjects in the same order."
        )
    n_items = relevant.shape[1]
    if recs.size and recs.max() >= n_items:
        raise ValueError(f"recs names item index {int(recs.max())} but there are {n_items} items")
    rows = np.repeat(np.arange(relevant.shape[0], dtype=np.int64), np.diff(relevant.indptr))
    positive = relevant.data > 0
    # One sorted int64 key per relevant (subject, item) pair; a binary search
    # answers every position of the matrix at once.
    keys = np.sort(rows[positive] * n_items + relevant.indices[positive].astype(np.int64))
    queries = np.arange(recs.shape[0], dtype=np.int64)[:, None] * n_items + recs
    if keys.size == 0:
        return np.zeros(recs.shape, dtype=bool)
    where = np.minimum(np.searchsorted(keys, queries), keys.size - 1)
    return (keys[where] == queries) & (recs >= 0)


def relevant_counts(relevant: sp.csr_array | sp.csr_matrix) -> np.ndarray:
    """The number of relevant items in each row (stored values > 0)."""
    relevant = sp.csr_array(relevant)
    rows = np.repeat(np.arange(relevant.shape[0]), np.diff(relevant.indptr))
    return np.bincount(rows[relevant.data > 0], minlength=relevant.shape[0])


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ranking_metrics_per_subject(
    recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int
) -> dict[str, np.ndarray]:
    """Every ranking metric for each subject that has a relevant item.

    Args:
        recs: ``(n_subjects, >= k)`` recommended item indices, best first, ``-1`` padded.
        relevant: held-out relevance with one row per row of ``recs``.
        k: the cut-off.

    Returns:
        ``{metric: array}`` for the names in :data:`RANKING_METRICS`, each of
        length equal to the number of subjects with at least one relevant item
        (the others are left out: no metric is defined for them).
    """
    hit = hits(recs, relevant, k)
    width = hit.shape[1]
    n_rel = relevant_counts(relevant)
    keep = n_rel > 0
    hit, n_rel = hit[keep], n_rel[keep].astype(np.float64)
    cutoff = np.minimum(n_rel, k)
    n_hits = hit.sum(axis=1).astype(np.float64)

    discounts = _discounts(k)
    dcg = hit @ discounts[:width]
    ideal = np.concatenate(([0.0], np.cumsum(discounts)))[cutoff.astype(np.int64)]

    positions = np.arange(1, width + 1, dtype=np.float64)
    precision_at_j = np.cumsum(hit, axis=1) / positions
    average_precision = (precision_at_j * hit).sum(axis=1) / cutoff

    first = np.argmax(hit, axis=1)
    reciprocal_rank = np.where(n_hits > 0, 1.0 / (first + 1.0), 0.0)

    return {
        "precision": n_hits / k,
        "recall": n_hits / n_rel,
        "ndcg": dcg / ideal,
        "map": average_precision,
        "hit_rate": (n_hits > 0).astype(np.float64),
        "mrr": reciprocal_rank,
    }


def ranking_metrics(
    recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int
) -> dict[str, float]:
    """The mean of every ranking metric over subjects with a relevant item.

    Returns:
        ``{"precision": ..., "recall": ..., "ndcg": ..., "map": ...,
        "hit_rate": ..., "mrr": ...}``; NaN each when no subject has a
        relevant item.
    """
    per_subject = ranking_metrics_per_subject(recs, relevant, k)
    return {
        name: float(values.mean()) if values.size else float("nan")
        for name, values in per_subject.items()
    }


def precision_at_k(recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int) -> float:
    """Mean share of the ``k`` slots holding a relevant item."""
    return ranking_metrics(recs, relevant, k)["precision"]


def recall_at_k(recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int) -> float:
    """Mean share of each subject's relevant items found in the top ``k``."""
    return ranking_metrics(recs, relevant, k)["recall"]


def ndcg_at_k(recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int) -> float:
    """Mean normalised discounted cumulative gain with binary gains."""
    return ranking_metrics(recs, relevant, k)["ndcg"]


def map_at_k(recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int) -> float:
    """Mean average precision, each normalised by ``min(|relevant|, k)``."""
    return ranking_metrics(recs, relevant, k)["map"]


def hit_rate_at_k(recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int) -> float:
    """Share of subjects with at least one relevant item in the top ``k``."""
    return ranking_metrics(recs, relevant, k)["hit_rate"]


def mrr_at_k(recs: np.ndarray, relevant: sp.csr_array | sp.csr_matrix, k: int) -> float:
    """Mean reciprocal rank of the first relevant item (0 when none in the top ``k``)."""
    return ranking_metrics(recs, relevant, k)["mrr"]


# --- beyond accuracy --------------------------------------------------------


def catalog_coverage(recs: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalog that appears in at least one top-``k`` list.

    Args:
        recs: recommended item indices, ``-1`` padded.
        n_items: the catalog size.
        k: the cut-off.
    """
    if n_items <= 0:
        raise ValueError("n_items must be positive")
    recs = _check_recs(recs, k)
    return float(np.unique(recs[recs >= 0]).size / n_items)


def category_matrix(item_categories: Sequence[Sequence[str]]) -> sp.csr_array:
    """A binary ``(n_items, n_categories)`` matrix from per-item category lists."""
    vocabulary: dict[str, int] = {}
    lengths = np.fromiter((len(c) for c in item_categories), dtype=np.int64,
                          count=len(item_categories))
    columns = np.fromiter(
        (vocabulary.setdefault(name, len(vocabulary)) for cats in item_categories for name in cats),
        dtype=np.int64, count=int(lengths.sum()),
    )
    rows = np.repeat(np.arange(len(item_categories)), lengths)
    matrix = sp.csr_array(
        (np.ones(columns.size, dtype=np.float32), (rows, columns)),
        shape=(len(item_categories), max(len(vocabulary), 1)),
    )
    matrix.data[:] = 1.0  # an item listing a category twice still has it once
    return matrix


def intra_list_diversity(
    recs: np.ndarray,
    k: int,
    *,
    item_vectors: np.ndarray | sp.csr_array | sp.csr_matrix | None = None,
    item_categories: Sequence[Sequence[str]] | None = None,
) -> float:
    """Mean pairwise cosine distance between the items of each list.

    ``ILD_u = mean over pairs i < j of (1 - cos(v_i, v_j))`` over the top-``k``
    items of subject ``u`` (Ziegler et al. 2005), averaged over subjects. The
    item vectors are ``item_vectors`` when given (embeddings, factors), else the
    multi-hot category vectors. Pairs involving an item with no features (an
    all-zero vector, an item with no category) are left out; subjects with no
    valid pair are left out of the mean.

    Returns:
        The mean diversity in ``[0, 2]`` (``[0, 1]`` for non-negative vectors
        such as categories), or NaN when no subject has a valid pair.
    """
    recs = _check_recs(recs, k)
    sparse: sp.csr_array | None = None
    dense_features: np.ndarray | None = None
    if item_vectors is not None and sp.issparse(item_vectors):
        sparse = sp.csr_array(item_vectors, dtype=np.float64)
    elif item_vectors is not None:
        dense_features = np.asarray(item_vectors, dtype=np.float64)
    elif item_categories is not None:
        sparse = category_matrix(item_categories).astype(np.float64)
    else:
        raise ValueError("intra_list_diversity needs item_vectors or item_categories")

    if sparse is not None:
        norms = np.sqrt(np.asarray(sparse.multiply(sparse).sum(axis=1)).ravel())
    else:
        assert dense_features is not None
        norms = np.linalg.norm(dense_features, axis=1)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms, dtype=np.float64), where=norms > 0)
    width = recs.shape[1]
    upper = np.triu(np.ones((width, width), dtype=bool), k=1)
    totals: list[np.ndarray] = []
    for start in range(0, recs.shape[0], _DIVERSITY_BLOCK):
        block = recs[start:start + _DIVERSITY_BLOCK]
        valid = block >= 0
        flat = np.where(valid, block, 0).ravel()
        dense = sparse[flat].toarray() if sparse is not None else dense_features[flat]  # type: ignore[index]
        unit = (dense * scale[flat][:, None]).reshape(block.shape[0], width, -1)
        cosine = np.einsum("ukd,ujd->ukj", unit, unit)
        has_features = valid & (norms[np.where(valid, block, 0)] > 0)
        pairs = has_features[:, :, None] & has_features[:, None, :] & upper
        n_pairs = pairs.sum(axis=(1, 2))
        distance = ((1.0 - cosine) * pairs).sum(axis=(1, 2))
        totals.append(distance[n_pairs > 0] / n_pairs[n_pairs > 0])
    values = np.concatenate(totals) if totals else np.empty(0)
    return float(values.mean()) if values.size else float("nan")


def novelty(recs: np.ndarray, item_popularity: np.ndarray, n_subjects: int, k: int) -> float:
    """Mean self-information of the recommended items, in bits.

    ``novelty = mean over lists of mean over items of -log2(p_i)`` with
    ``p_i`` = share of training subjects who interacted with item ``i``
    (Zhou et al. 2010). Items nobody interacted with are counted as seen once,
    so the value stays finite. Higher means less obvious recommendations.

    Args:
        recs: recommended item indices, ``-1`` padded.
        item_popularity: number of training subjects per item.
        n_subjects: number of training subjects.
        k: the cut-off.
    """
    recs = _check_recs(recs, k)
    if n_subjects <= 0:
        raise ValueError("n_subjects must be positive")
    popularity = np.maximum(np.asarray(item_popularity, dtype=np.float64), 1.0)
    information = -np.log2(np.minimum(popularity / n_subjects, 1.0))
    valid = recs >= 0
    per_item = np.where(valid, information[np.where(valid, recs, 0)], 0.0)
    counts = valid.sum(axis=1)
    listed = counts > 0
    if not listed.any():
        return float("nan")
    return float((per_item.sum(axis=1)[listed] / counts[listed]).mean())


# --- rating prediction ------------------------------------------------------


def _pair(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    actual = np.asarray(actual, dtype=np.float64).ravel()
    if predicted.shape != actual.shape:
        raise ValueError(f"{predicted.size} predictions for {actual.size} ratings")
    return predicted, actual


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error over all (subject, item) pairs; NaN when empty."""
    predicted, actual = _pair(predicted, actual)
    if not predicted.size:
        return float("nan")
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error over all (subject, item) pairs; NaN when empty."""
    predicted, actual = _pair(predicted, actual)
    if not predicted.size:
        return float("nan")
    return float(np.mean(np.abs(predicted - actual)))
