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
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from personalize.conf import personalize_settings
from personalize.serving.catalog import CatalogIndex
from personalize.strategies.common import positions
from personalize.training.artifacts import Artifact

logger = logging.getLogger(__name__)
metrics_logger = logging.getLogger("personalize.serving.metrics")

#: Artifact array names under which embedding strategies commonly keep item vectors.
EMBEDDING_ARRAY_NAMES = ("embeddings", "item_embeddings", "item_vectors", "vectors")


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
    """Unit embeddings of ``pks`` from the embeddings plugin's active model, if any.

    Returns:
        ``(vectors, known)``: an ``(n, d)`` array and a bool mask of the rows found.
    """
    name = personalize_settings.DIVERSITY_EMBEDDINGS_STRATEGY
    if not name:
        return None
    from personalize.training.active import get_active_model

    try:
        model = get_active_model(name)  # None when not configured or not trained
    except Exception:
        logger.warning("Cannot load the %r model for diversity", name, exc_info=True)
        return None
    if model is None:
        return None
    getter = getattr(model.strategy, "item_vectors", None)
    try:
        if callable(getter):
            vectors = np.asarray(getter(model.artifact, pks.tolist()), dtype=np.float64)
            if vectors.ndim != 2 or vectors.shape[0] != len(pks):
                return None
            return _unit_rows(vectors)
        table = _embedding_table(model.artifact)
        return table.unit_vectors(model.artifact, pks) if table is not None else None
    except Exception:
        logger.warning("Cannot read item vectors from %r", name, exc_info=True)
        return None


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


#: Rows of an embedding matrix whose norms are computed at a time (bounds the float64 copy).
_NORM_CHUNK = 65_536


@dataclass(frozen=True)
class _EmbeddingTable:
    """Where an embedding artifact keeps its vectors, and their norms, computed once.

    A block reads a few dozen rows; their norms come from here rather than
    from a pass over the rows on every request.
    """

    array: str
    #: 1 / the norm of each row; 0 for a row that is all zeros (it is like nothing).
    inverse_norms: np.ndarray
    #: the rows holding a NaN or an infinite entry (read with those entries as 0), if any
    unclean: np.ndarray | None

    @classmethod
    def build(cls, artifact: Artifact, array: str) -> _EmbeddingTable | None:
        matrix = artifact[array]
        if matrix.ndim != 2 or len(matrix) != len(artifact["item_ids"]):
            return None
        norms = np.empty(len(matrix))
        unclean = np.zeros(len(matrix), dtype=bool)
        for start in range(0, len(matrix), _NORM_CHUNK):
            _, chunk, changed = _clean_norms(matrix[start:start + _NORM_CHUNK])
            norms[start:start + len(chunk)] = chunk
            unclean[start:start + len(chunk)] = changed
        return cls(array, _inverse(norms), unclean if unclean.any() else None)

    def unit_vectors(self, artifact: Artifact, pks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The unit vectors of ``pks`` (zero rows for unknown items) and which are known.

        Float32 vectors stay float32 (as the model made them): a cosine needs
        no more, and a block's similarity then reads and multiplies half the bytes.
        """
        columns, found = positions(artifact, pks)
        matrix = artifact[self.array]
        dtype = np.float32 if matrix.dtype == np.float32 else np.float64
        scale = np.zeros(len(pks))
        scale[found] = self.inverse_norms[columns]
        if found.all():
            vectors = matrix[columns].astype(dtype, copy=False)
        else:
            vectors = np.zeros((len(pks), matrix.shape[1]), dtype=dtype)
            vectors[found] = matrix[columns]
        if self.unclean is not None and self.unclean[columns].any():
            vectors = np.nan_to_num(vectors)
        vectors *= scale.astype(dtype, copy=False)[:, None]
        return vectors, scale > 0


_TABLE_KEY = "personalize.diversity_table"


def _embedding_table(artifact: Artifact) -> _EmbeddingTable | None:
    """The artifact's :class:`_EmbeddingTable`, built on first use (``None``: no vectors)."""
    try:
        return artifact.cache[_TABLE_KEY]
    except KeyError:
        pass
    array = next((a for a in EMBEDDING_ARRAY_NAMES if a in artifact), None)
    table = None
    if array is not None and "item_ids" in artifact:
        table = _EmbeddingTable.build(artifact, array)
    artifact.cache[_TABLE_KEY] = table
    return table


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


# --- the metrics -------------------------------------------------------------


@dataclass
class PlacementStats:
    """What serving observed for one placement in this process."""

    computed: int = 0
    cache_hits: int = 0
    fallback_filled: int = 0
    empty: int = 0
    diversity_sum: float = 0.0
    diversity_count: int = 0

    @property
    def mean_diversity(self) -> float | None:
        return self.diversity_sum / self.diversity_count if self.diversity_count else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "computed": self.computed,
            "cache_hits": self.cache_hits,
            "fallback_filled": self.fallback_filled,
            "empty": self.empty,
            "mean_intra_list_diversity": self.mean_diversity,
        }


@dataclass
class ServingStats:
    """Per-process counters, by placement (``serving_stats()`` reads them)."""

    placements: dict[str, PlacementStats] = field(default_factory=dict)
    lock: Any = field(default_factory=threading.Lock, repr=False)

    def _get(self, placement: str) -> PlacementStats:
        stats = self.placements.get(placement)
        if stats is None:
            stats = self.placements.setdefault(placement, PlacementStats())
        return stats

    def record_hit(self, placement: str) -> None:
        with self.lock:
            self._get(placement).cache_hits += 1

    def record_computed(
        self, placement: str, *, diversity: float | None, n_items: int, fallback: bool
    ) -> None:
        with self.lock:
            stats = self._get(placement)
            stats.computed += 1
            stats.fallback_filled += int(fallback)
            stats.empty += int(n_items == 0)
            if diversity is not None and n_items >= 2:
                stats.diversity_sum += diversity
                stats.diversity_count += 1
        if not metrics_logger.isEnabledFor(logging.DEBUG):  # skip formatting the arguments
            return
        metrics_logger.debug(
            "placement=%s items=%d intra_list_diversity=%s fallback=%s",
            placement, n_items, "-" if diversity is None else f"{diversity:.4f}", fallback,
            extra={"placement": placement, "intra_list_diversity": diversity,
                   "items": n_items, "fallback": fallback},
        )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return {name: stats.as_dict() for name, stats in self.placements.items()}

    def reset(self) -> None:
        with self.lock:
            self.placements.clear()


stats = ServingStats()


def serving_stats() -> dict[str, dict[str, Any]]:
    """Serving counters and mean intra-list diversity of this process, by placement."""
    return stats.snapshot()
