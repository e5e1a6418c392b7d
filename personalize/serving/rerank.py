"""Diversity re-ranking with maximal marginal relevance (MMR), and intra-list diversity.

MMR picks items one at a time, each maximising::

    (1 - lambda) * relevance(i) - lambda * max_{j already picked} similarity(i, j)

with relevance min-max normalised to [0, 1] within the candidate pool, so the
placement's ``diversity`` (lambda) means the same whatever the strategy's score
scale: 0 keeps the strategy's order, 1 picks the item least like those already
shown. The loop runs once per *picked* item (a block holds at most
``MAX_LIMIT``); each step is one vectorised NumPy operation over the pool.

Similarity is the cosine between item embeddings when the embeddings plugin has
an active model (``DIVERSITY_EMBEDDINGS_STRATEGY``), and between category
memberships otherwise (or for an item the embedding model does not know).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from personalize.conf import personalize_settings
from personalize.serving import loader
from personalize.serving.catalog import CatalogIndex

logger = logging.getLogger(__name__)

def normalised_relevance(scores: np.ndarray) -> np.ndarray:
    """Scores min-max scaled to [0, 1] (all ones when they are all equal); non-finite ones 0."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    finite = np.isfinite(scores)
    values = scores if finite.all() else scores[finite]
    if values.size == 0:
        return finite.astype(np.float64)
    low, high = values.min(), values.max()
    if high - low <= 0:
        return finite.astype(np.float64)
    scaled = (scores - low) / (high - low)
    scaled[~finite] = 0.0
    return scaled


def mmr(
    relevance: np.ndarray,
    similarity: np.ndarray,
    lam: float,
    k: int,
    selected: Sequence[int] = (),
) -> list[int]:
    """Greedy MMR order of a candidate pool.

    Args:
        relevance: relevance of each candidate (any scale; normalised here).
        similarity: ``(n_selected_before + n, n_selected_before + n)`` or
            ``(n, n)`` similarity matrix over ``selected`` followed by the pool.
            Rows/columns ``0 .. len(selected)-1`` are the items picked before.
        lam: the diversity weight in [0, 1].
        k: how many to pick.
        selected: indices (into ``similarity``) of items already shown above
            this pool, which new picks should also differ from.

    Returns:
        Indices into the pool (``0 .. n-1``), best first, at most ``k``.
    """
    n = len(relevance)
    k = min(int(k), n)
    if k <= 0:
        return []
    offset = len(selected)
    if lam <= 0 and not offset:
        return list(range(k))
    rel = (1.0 - lam) * normalised_relevance(relevance)
    # lambda x similarity, so that each step is one subtraction (lam >= 0, so the
    # largest scaled similarity is lambda x the largest similarity, exactly)
    penalty = lam * similarity[offset:, offset:]
    # the penalty of each candidate: its largest similarity to anything picked so
    # far (nothing picked yet: none)
    closest = lam * similarity[offset:, :offset].max(axis=1) if offset else None
    picked = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    for _ in range(k):
        gain = rel - closest if closest is not None else rel.copy()
        gain[picked] = -np.inf
        best = int(gain.argmax())
        chosen.append(best)
        picked[best] = True
        closest = penalty[:, best].copy() if closest is None else np.maximum(
            closest, penalty[:, best], out=closest)
    return chosen


def _embedding_vectors(pks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Unit vectors of ``pks`` from the ``DIVERSITY_EMBEDDINGS_STRATEGY`` model, if any.

    Returns:
        ``(vectors, known)``: an ``(n, d)`` array and a bool mask of the rows
        found; ``None`` when there is no such model or it has no item vectors.
    """
    name = personalize_settings.DIVERSITY_EMBEDDINGS_STRATEGY
    if not name:
        return None
    try:
        model = loader.get_active_model(name)  # None when not configured or not trained
    except Exception:
        logger.warning("Cannot load the %r model for diversity", name, exc_info=True)
        return None
    if model is None or not model.strategy.implements("item_vectors"):
        return None
    try:
        vectors = model.strategy.item_vectors(model.artifact, pks.tolist())
    except Exception:
        logger.warning("Cannot read item vectors from %r", name, exc_info=True)
        return None
    if vectors is None:
        return None
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(pks):
        logger.warning("%r gave item vectors of shape %s for %d items", name, vectors.shape,
                       len(pks))
        return None
    return _unit_rows(vectors)


def _unit_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``vectors`` scaled to unit length, and which rows are not zero."""
    vectors, norms, _ = _clean_norms(vectors)
    inverse = _inverse(norms)
    vectors *= inverse[:, None]  # unknown rows become zero
    return vectors, inverse > 0


def _clean_norms(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows as float64 with NaN / infinite entries as 0, their norms, the rows changed)``."""
    rows = rows.astype(np.float64)
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():  # a NaN or infinite entry: count it as 0
        rows = np.nan_to_num(rows)
    return rows, np.sqrt(np.einsum("ij,ij->i", rows, rows)), ~finite


def _inverse(norms: np.ndarray) -> np.ndarray:
    """1 / each norm; 0 for a zero (or overflowing) one: such a row is like nothing."""
    usable = np.isfinite(norms) & (norms > 0)
    return np.divide(1.0, norms, out=np.zeros_like(norms), where=usable)


def similarity_matrix(index: CatalogIndex, pks: Sequence[int] | np.ndarray) -> np.ndarray:
    """Pairwise item similarity in [0, 1]-ish: embeddings when available, else categories."""
    pks = np.asarray(pks, dtype=np.int64)
    n = len(pks)
    if n == 0:
        return np.zeros((0, 0))
    embedded = _embedding_vectors(pks)
    if embedded is not None and embedded[1].all():
        sim = (embedded[0] @ embedded[0].T).astype(np.float64, copy=False)
    else:
        sim = _category_similarity(index, pks)
        if embedded is not None:
            vectors, known = embedded
            both = known[:, None] & known[None, :]
            sim = np.where(both, vectors @ vectors.T, sim)
    np.fill_diagonal(sim, 1.0)
    return sim


def _category_similarity(index: CatalogIndex, pks: np.ndarray) -> np.ndarray:
    rows, found = index.positions(pks)
    if found.all():
        return index.category_similarity(rows)
    sim = np.zeros((len(pks), len(pks)))  # pks the catalog does not know are like nothing
    known = np.flatnonzero(found)
    sim[np.ix_(known, known)] = index.category_similarity(rows)
    return sim


def intra_list_diversity(similarity: np.ndarray) -> float:
    """Mean pairwise dissimilarity (1 - similarity) of a list; 0 for fewer than two items."""
    n = similarity.shape[0]
    if n < 2:
        return 0.0
    dissimilarity = 1.0 - similarity[_upper_triangle(n)]
    return float(dissimilarity.sum() / dissimilarity.size)  # np.mean, without its overhead


@lru_cache(maxsize=128)
def _upper_triangle(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)
