"""Vectorised helpers the built-in strategies share.

Id lookups go through ``np.searchsorted`` on the artifact's sorted
``item_ids`` (the dataset keeps its ids sorted), so mapping a 500-item history
to columns is one C call, not a Python loop; a dict lookup is the fallback for
unsorted id arrays or ids of another type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from personalize.dataset.keys import csr_parts, stable_order
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend, Scored, Strategy
from personalize.strategies.history import History
from personalize.strategies.ranking import top_k, top_k_rows

#: Float64 score cells one block of ``recommend_many`` holds (32 MiB).
_BLOCK_CELLS = 1 << 22


def positions(artifact: Artifact, ids: Sequence[Any] | Iterable[Any] | np.ndarray,
              name: str = "item_ids") -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``ids`` in ``artifact[name]``.

    Returns:
        ``(columns, found)``: ``columns`` holds the column of every known id
        (unknown ids are left out), ``found`` is a bool mask over ``ids``.
    """
    # an array is searched as it is; anything else is listed first
    ids = ids if isinstance(ids, np.ndarray) and ids.ndim == 1 else list(ids)
    if not len(ids):
        return np.empty(0, dtype=np.int64), np.zeros(0, dtype=bool)
    known = artifact[name]
    n = len(known)
    if n == 0:
        return np.empty(0, dtype=np.int64), np.zeros(len(ids), dtype=bool)
    if _is_sorted(artifact, name):
        try:
            query = np.asarray(ids)
            if query.dtype.kind != known.dtype.kind:
                query = query.astype(known.dtype)
        except (ValueError, TypeError, OverflowError):
            query = None
        if query is not None and query.ndim == 1:
            return sorted_positions(known, query)
    index = artifact.index_of(name)
    ids = ids.tolist() if isinstance(ids, np.ndarray) else ids
    found_list = [i in index for i in ids]
    columns = np.fromiter((index[i] for i in ids if i in index), dtype=np.int64)
    return columns, np.asarray(found_list, dtype=bool)


def _is_sorted(artifact: Artifact, name: str) -> bool:
    """Whether ``artifact[name]`` is strictly increasing (checked once per artifact)."""
    sorted_key = f"sorted:{name}"
    is_sorted = artifact.cache.get(sorted_key)
    if is_sorted is None:
        known = artifact[name]
        is_sorted = artifact.cache[sorted_key] = bool(
            len(known) < 2 or np.all(known[1:] > known[:-1]))
    return is_sorted


def sorted_positions(known: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`positions` in a sorted, non-empty array ``known``, for a query of its kind.

    Returns:
        ``(positions, found)`` as :func:`positions` gives them.
    """
    where = known.searchsorted(query)
    # past the end reads the last id ("clip"), which cannot match: such a query is unknown
    found = known.take(where, mode="clip") == query
    return where[found].astype(np.int64, copy=False), found


def history_vector(artifact: Artifact, history: History, n: int,
                   binary: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The history as a dense weight vector over the artifact's items.

    Repeated items add up. Returns ``(vector, columns)`` where ``columns`` are
    the distinct known history columns, sorted.
    """
    rows = history_matrix(artifact, [history], binary)
    vector = np.zeros(n, dtype=np.float32)
    vector[rows.indices] = rows.data
    return vector, rows.indices


@dataclass(frozen=True)
class HistoryRows:
    """Histories as the parts of a CSR matrix over an artifact's items.

    Plain arrays rather than a SciPy matrix: serving scores one history per
    request, and building a ``csr_array`` (with its checks) costs more than
    scoring it. :meth:`tocsr` gives the SciPy matrix where one is needed.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.indices.size)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    def row_of_entries(self) -> np.ndarray:
        """The row of every stored entry."""
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def toarray(self) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=self.data.dtype)
        dense[self.row_of_entries(), self.indices] = self.data
        return dense

    def tocsr(self) -> sp.csr_array:
        matrix = sp.csr_array((self.data, self.indices, self.indptr), shape=self.shape)
        matrix.has_canonical_format = True  # sorted, distinct columns per row
        return matrix


def history_matrix(artifact: Artifact, histories: Sequence[History],
                   binary: bool = False) -> HistoryRows:
    """Histories as a ``(len(histories), n_items)`` float32 CSR over the artifact's items.

    Row ``r`` holds history ``r``'s summed weights (repeated items add up), on
    its known items only, with sorted columns: what :func:`history_vector`
    gives for one history, for many in one pass. With ``binary`` the event
    weights are ignored: an item counts as 1 times the recency of its latest
    interaction (``History.recency``; 1 without one). A stored entry may be 0
    (weights that cancel): every known item is stored.
    """
    n = len(artifact["item_ids"])
    width = max(n, 1)
    rows, columns, found = _known_items(artifact, histories)
    keys = rows * width + columns
    order = stable_order(keys, len(histories) * width)
    ordered = keys[order]
    first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if keys.size else order
    if binary and all(h.recency is None for h in histories):
        values = np.ones(first.size, dtype=np.float32)
    elif binary:
        recency = np.concatenate([
            np.asarray(h.recency if h.recency is not None else np.ones(len(h.item_ids)),
                       dtype=np.float64) for h in histories])
        values = (np.maximum.reduceat(recency[found][order], first) if first.size
                  else np.empty(0)).astype(np.float32)
    else:
        weights = [h.weights if h.weights is not None else np.ones(len(h.item_ids))
                   for h in histories]
        flat = np.concatenate([np.asarray(w, dtype=np.float64) for w in weights] or [np.empty(0)])
        # summed in float64 and rounded once, in the order of each history
        values = (np.add.reduceat(flat[found][order], first) if first.size
                  else np.empty(0)).astype(np.float32)
    shape = (len(histories), n)
    indptr, indices = csr_parts(ordered[first], shape)
    return HistoryRows(indptr, indices, values, shape)


def _known_items(artifact: Artifact, histories: Sequence[History]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, columns, found)`` of every history item the artifact knows, in one lookup.

    ``found`` is a bool mask over all history items, concatenated.
    """
    lengths = np.fromiter((len(h.item_ids) for h in histories), dtype=np.int64,
                          count=len(histories))
    columns, found = positions(artifact, [i for h in histories for i in h.item_ids])
    return np.repeat(np.arange(len(histories)), lengths)[found], columns, found


def explain_inputs(
    artifact: Artifact, history: History, item_ids: Sequence[Any], binary: bool = False
) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What a vector strategy's ``explain_many`` starts from.

    Returns:
        ``(answers, targets, found, vector, columns)``: one ``None`` answer per
        item id, the columns of the known ids and the mask of which ids are
        known (:func:`positions`), and the history as :func:`history_vector`
        gives it.
    """
    targets, found = positions(artifact, item_ids)
    vector, columns = history_vector(artifact, history, len(artifact["item_ids"]), binary=binary)
    return [None] * len(item_ids), targets, found, vector, columns


def mask_columns(scores: np.ndarray, artifact: Artifact, history: History,
                 exclude: Iterable[Any]) -> None:
    """Set the scores of history and excluded items to ``-inf`` in place."""
    seen, _ = positions(artifact, history.item_ids)
    scores[seen] = -np.inf
    excluded, _ = positions(artifact, exclude)
    scores[excluded] = -np.inf


def ranked(artifact: Artifact, scores: np.ndarray, k: int,
           name: str = "item_ids") -> Scored:
    """The ``k`` best finite scores as ``[(item_id, score)]``, best first."""
    best = top_k(scores, int(k))
    ids = artifact[name][best].tolist()
    return list(zip(ids, scores[best].astype(float).tolist(), strict=True))


def parse_exclude(exclude: Iterable[Any] | None) -> list[Any]:
    return list(exclude) if exclude is not None else []


def similar_in_table(artifact: Artifact, table: str, item_id: Any, k: int,
                     exclude: Iterable[Any], model: str) -> Scored:
    """The ``k`` best items of ``item_id``'s row of the sparse item x item ``table``.

    The item itself and ``exclude`` are left out. ``model`` names the model in
    the error for an unknown item.
    """
    columns, _ = positions(artifact, [item_id])
    if columns.size == 0:
        raise CannotRecommend(f"Item {item_id!r} is not in the {model} model.")
    rows = artifact.get_csr(table)
    row = int(columns[0])
    start, end = rows.indptr[row], rows.indptr[row + 1]
    scores = np.full(len(artifact["item_ids"]), -np.inf)
    scores[rows.indices[start:end]] = rows.data[start:end]
    scores[row] = -np.inf
    excluded, _ = positions(artifact, parse_exclude(exclude))
    scores[excluded] = -np.inf
    return ranked(artifact, scores, k) if k > 0 else []


class VectorStrategy(Strategy):
    """A strategy that scores every item of its artifact at once.

    Subclasses implement :meth:`item_scores`; this class turns the score vector
    into recommendations (history and excluded items masked, ``top_k``) and
    offers :meth:`score_items`, which the Cascade and Blend hybrids use to
    score another strategy's candidates.
    """

    def item_scores(self, artifact: Artifact, history: History) -> np.ndarray:
        """A new float64 score per artifact item (``-inf``: cannot be recommended).

        Raises:
            CannotRecommend: nothing sound can be said for this history.
        """
        raise NotImplementedError

    def item_scores_many(
        self, artifact: Artifact, histories: Sequence[History]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`item_scores` of each history, as one ``(len(histories), n_items)`` matrix.

        Returns:
            ``(scores, answered)``: ``answered`` is False for the histories
            :meth:`item_scores` raises CannotRecommend for (their row is
            ``-inf``). Strategies that score a batch in one product override
            this with one whose rows equal :meth:`item_scores`.
        """
        scores = np.full((len(histories), len(artifact["item_ids"])), -np.inf)
        answered = np.zeros(len(histories), dtype=bool)
        for row, history in enumerate(histories):
            try:
                scores[row] = self.item_scores(artifact, history)
            except CannotRecommend:
                continue
            answered[row] = True
        return scores, answered

    def recommend(
        self, artifact: Artifact, history: History, k: int, exclude: Iterable[Any] = ()
    ) -> Scored:
        """The ``k`` best unseen, non-excluded items, best first."""
        self.check_artifact(artifact)
        if k <= 0:
            return []
        scores = self.item_scores(artifact, history)
        mask_columns(scores, artifact, history, parse_exclude(exclude))
        return ranked(artifact, scores, k)

    def recommend_many(
        self, artifact: Artifact, histories: Sequence[History], k: int,
        exclude: Iterable[Any] = (),
    ) -> list[Scored | None]:
        """:meth:`recommend` for each history: one score matrix and one top-k per block.

        The lists equal what :meth:`recommend` returns for each history
        (``None`` where it raises CannotRecommend). A subclass that ranks in
        its own ``recommend`` gets the base class's loop over it instead.
        """
        if type(self).recommend is not VectorStrategy.recommend:
            return super().recommend_many(artifact, histories, k, exclude)
        self.check_artifact(artifact)
        if k <= 0:
            return [[] for _ in histories]
        item_ids = artifact["item_ids"]
        excluded, _ = positions(artifact, parse_exclude(exclude))
        block = max(1, _BLOCK_CELLS // max(len(item_ids), 1))
        lists: list[Scored | None] = []
        for start in range(0, len(histories), block):
            part = histories[start:start + block]
            scores, answered = self.item_scores_many(artifact, part)
            rows, columns, _ = _known_items(artifact, part)
            scores[rows, columns] = -np.inf
            scores[:, excluded] = -np.inf
            for row, best in enumerate(top_k_rows(scores, k)):
                lists.append(list(zip(item_ids[best].tolist(), scores[row, best].tolist(),
                                      strict=True)) if answered[row] else None)
        return lists

    def score_items(
        self, artifact: Artifact, history: History, item_ids: Sequence[Any]
    ) -> np.ndarray:
        """The score this strategy gives each of ``item_ids`` (NaN where it has none).

        History items are not masked: the caller decides what to show.
        """
        self.check_artifact(artifact)
        scores = self.item_scores(artifact, history)
        columns, found = positions(artifact, item_ids)
        out = np.full(len(found), np.nan)
        out[found] = scores[columns]
        out[~np.isfinite(out)] = np.nan
        return out
