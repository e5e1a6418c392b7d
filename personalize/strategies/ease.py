"""EASE: the closed-form linear item-item autoencoder (Steck, WWW 2019).

With ``X`` the subject x item matrix and ``G = X^T X + l2 * I``, the item-item
weights are ``B = I - P / diag(P)`` with ``P = G^-1`` (so ``diag(B) = 0``), and
a subject's scores are ``x_u B``. One inversion of an items x items matrix, in
float32: memory grows with the square of the catalog, so the number of items
it models is capped by ``PERSONALIZE["EASE_MAX_ITEMS"]`` (or the ``max_items``
option); above it, training refuses and system check ``personalize.E020``
warns at start-up. Only items with at least one positive interaction are
modelled (a catalog's never-seen items would only add rows of zeros).

``popularity_exponent`` scales each item's column of ``B`` by its training
count to that power: slightly negative values (the default, -0.1) counter
EASE's lean towards blockbusters and raised NDCG@10 on MovieLens-100k.

Artifact layout (``artifact_version`` 1):

``item_ids``
    the ids of the modelled items, sorted.
``weights``
    float32 ``(n, n)`` dense ``B`` (row: history item, column: scored item), or
``weights.*``
    the same as CSR when ``top_entries`` prunes each row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from personalize.conf import personalize_settings
from personalize.dataset import Dataset
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend, Options, Scored
from personalize.strategies.common import (
    HistoryRows,
    VectorStrategy,
    history_matrix,
    history_vector,
    parse_exclude,
    positions,
    ranked,
)
from personalize.strategies.history import History
from personalize.strategies.item_knn import positive_matrix
from personalize.strategies.recency import check_half_lives, with_recency

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

#: Rows of the inverse symmetrised at a time (bounds the temporary copy).
_SYMMETRISE_ROWS = 1024


class TooManyItems(ValueError):
    """The snapshot has more items than the EASE ceiling allows."""


@dataclass(frozen=True)
class EASEOptions(Options):
    """Options of :class:`EASE`.

    Attributes:
        l2: the L2 regularisation added to the Gram matrix diagonal (on the
            scale of squared interaction weights; tuned on MovieLens-100k).
        popularity_exponent: scale item ``j``'s scores by ``count_j ** exponent``
            (0 disables; negative values reduce popularity bias).
        binary: treat every positive interaction as 1 (the EASE paper's input;
            ``False`` uses the configured event weights).
        max_items: item ceiling for this strategy (default ``EASE_MAX_ITEMS``).
        top_entries: keep only this many largest weights per history item
            (a sparse artifact for large catalogs; ``None`` keeps ``B`` dense).
        recency_half_life: fold a history in with weights that halve every
            this many interactions back from the last one (``None``: off, every
            interaction weighs the same; see :mod:`~personalize.strategies.recency`).
        recency_half_life_days: the same per day back from the history's
            latest interaction (``None``: off).
    """

    l2: float = 450.0
    popularity_exponent: float = -0.1
    binary: bool = True
    max_items: int | None = None
    top_entries: int | None = None
    recency_half_life: float | None = None
    recency_half_life_days: float | None = None

    def validate(self) -> None:
        check_half_lives(self.recency_half_life, self.recency_half_life_days)
        if not self.l2 > 0:
            raise ValueError(f"l2 must be positive, got {self.l2!r}")
        if not -2.0 <= self.popularity_exponent <= 2.0:
            raise ValueError(
                f"popularity_exponent must be between -2 and 2, got {self.popularity_exponent!r}"
            )
        if self.max_items is not None and (
            not isinstance(self.max_items, int) or self.max_items < 1
        ):
            raise ValueError(
                f"max_items must be a positive integer or None, got {self.max_items!r}"
            )
        if self.top_entries is not None and (
            not isinstance(self.top_entries, int) or self.top_entries < 1
        ):
            raise ValueError(
                f"top_entries must be a positive integer or None, got {self.top_entries!r}"
            )


def _inverse_spd(gram: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix, in place where possible."""
    potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (gram,))
    factor, info = potrf(gram, lower=False, overwrite_a=True, clean=False)
    if info != 0:  # not positive definite in float32: fall back to LU
        return scipy.linalg.inv(gram, check_finite=False)
    inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inversion failed (LAPACK info {info}).")
    # potri fills the upper triangle; mirror it a block of rows at a time
    n = inverse.shape[0]
    for start in range(0, n, _SYMMETRISE_ROWS):
        stop = min(n, start + _SYMMETRISE_ROWS)
        inverse[start:stop, :start] = inverse[:start, start:stop].T
        block = inverse[start:stop, start:stop]
        block[:] = np.triu(block) + np.triu(block, 1).T
    # LAPACK wrote it column-major; the transpose is the same (symmetric) matrix
    # row-major, so the rows of B that scoring gathers are contiguous in memory
    return inverse.T


class EASE(VectorStrategy):
    """Embarrassingly Shallow AutoEncoder: the strongest core strategy on ranking."""

    name = "ease"
    options_class = EASEOptions
    #: similar() reads the item-item weights learned from what people did together
    similar_reason: ClassVar[str] = "bought_together"
    needs = frozenset({"interactions"})
    artifact_version: ClassVar[int] = 1
    options: EASEOptions

    def max_items(self) -> int:
        """The item ceiling: the ``max_items`` option, else ``EASE_MAX_ITEMS``."""
        if self.options.max_items is not None:
            return self.options.max_items
        return personalize_settings.EASE_MAX_ITEMS

    def fit(self, dataset: Dataset) -> Artifact:
        """Solve for ``B`` on the items with at least one positive interaction.

        Raises:
            TooManyItems: more modelled items than the ceiling.
            CannotRecommend: no item has a positive interaction (nothing to model).
        """
        opts = self.options
        matrix = positive_matrix(dataset, opts.binary)
        counts = np.bincount(matrix.indices, minlength=dataset.n_items)
        active = np.flatnonzero(counts > 0)
        if active.size == 0:  # impressions or dislikes alone: an empty system to invert
            raise CannotRecommend("EASE: no item has a positive interaction to learn from.")
        ceiling = self.max_items()
        if active.size > ceiling:
            raise TooManyItems(
                f"EASE would model {active.size} items; the ceiling is {ceiling} "
                "(PERSONALIZE['EASE_MAX_ITEMS'] or the max_items option)."
            )
        sub = matrix[:, active] if active.size < dataset.n_items else matrix
        gram = (sub.T @ sub).toarray().astype(np.float32, copy=False)
        gram[np.diag_indices_from(gram)] += np.float32(opts.l2)
        weights = _inverse_spd(np.ascontiguousarray(gram))
        del gram
        diagonal = np.diag(weights).copy()
        weights /= -diagonal[None, :]
        np.fill_diagonal(weights, 0.0)
        if opts.popularity_exponent and active.size:
            scale = counts[active].astype(np.float32) ** np.float32(opts.popularity_exponent)
            weights *= scale[None, :]
        artifact = self.new_artifact(
            {"item_ids": np.asarray(dataset.item_ids)[active]},
            n_items=int(active.size), dense=opts.top_entries is None,
        )
        if opts.top_entries is None:
            artifact.arrays["weights"] = weights.astype(np.float32, copy=False)
        else:
            artifact.put_csr("weights", _prune_rows(weights, opts.top_entries))
        return artifact

    def folded(self, history: History) -> History:
        """The history as this strategy folds it in: recency-weighted when the options say so."""
        return with_recency(history, self.options.recency_half_life,
                            self.options.recency_half_life_days)

    def _rows(self, artifact: Artifact, columns: np.ndarray) -> np.ndarray:
        """Rows of ``B`` for ``columns`` as a dense ``(len(columns), n)`` array."""
        if "weights" in artifact:
            return artifact["weights"][columns]
        return artifact.get_csr("weights")[columns].toarray()

    def _history(self, artifact: Artifact, history: History) -> tuple[np.ndarray, np.ndarray]:
        """``(weights, columns)`` of the history's known items (what ``vector[columns]`` holds)."""
        rows = history_matrix(artifact, [self.folded(history)], binary=self.options.binary)
        if rows.nnz == 0:
            raise CannotRecommend("No history item is known to the EASE model.")
        return rows.data, rows.indices

    def item_scores(self, artifact: Artifact, history: History) -> np.ndarray:
        matrix = history_matrix(artifact, [self.folded(history)], binary=self.options.binary)
        if matrix.nnz == 0:
            raise CannotRecommend("No history item is known to the EASE model.")
        return _product(artifact, matrix)[0]

    def item_scores_many(
        self, artifact: Artifact, histories: Sequence[History]
    ) -> tuple[np.ndarray, np.ndarray]:
        """All histories' scores in one product ``H @ B`` (see :func:`_product`)."""
        matrix = history_matrix(artifact, [self.folded(h) for h in histories],
                                binary=self.options.binary)
        answered = np.diff(matrix.indptr) > 0
        scores = _product(artifact, matrix)
        scores[~answered] = -np.inf
        return scores, answered

    def score_items(
        self, artifact: Artifact, history: History, item_ids: Sequence[Any]
    ) -> np.ndarray:
        """Scores of ``item_ids`` only: gathers ``len(history) x len(item_ids)`` weights."""
        self.check_artifact(artifact)
        weights, columns = self._history(artifact, history)
        targets, found = positions(artifact, item_ids)
        out = np.full(len(found), np.nan)
        if "weights" in artifact:
            block = artifact["weights"][columns[:, None], targets]  # np.ix_, cheaper
        else:
            block = artifact.get_csr("weights")[columns][:, targets].toarray()
        out[found] = weights @ block
        return out

    def similar(
        self, artifact: Artifact, item_id: Any, k: int, exclude: Iterable[Any] = ()
    ) -> Scored:
        """Items that a history of only ``item_id`` would rank first."""
        self.check_artifact(artifact)
        columns, _ = positions(artifact, [item_id])
        if columns.size == 0:
            raise CannotRecommend(f"Item {item_id!r} is not in the EASE model.")
        scores = self._rows(artifact, columns)[0].astype(np.float64)
        scores[scores <= 0] = -np.inf
        scores[columns] = -np.inf
        excluded, _ = positions(artifact, parse_exclude(exclude))
        scores[excluded] = -np.inf
        return ranked(artifact, scores, k) if k > 0 else []

    def explain(self, artifact: Artifact, history: History, item_id: Any) -> Any:
        """The history item with the largest positive weight towards ``item_id``."""
        self.check_artifact(artifact)
        target, _ = positions(artifact, [item_id])
        n = len(artifact["item_ids"])
        vector, columns = history_vector(artifact, self.folded(history), n,
                                         binary=self.options.binary)
        if target.size == 0 or columns.size == 0:
            return None
        contribution = vector[columns] * self._rows(artifact, columns)[:, int(target[0])]
        if contribution.max() <= 0:
            return None
        return artifact["item_ids"][columns[int(np.argmax(contribution))]].item()

    def explain_many(
        self, artifact: Artifact, history: History, item_ids: Sequence[Any]
    ) -> list[Any]:
        """:meth:`explain` of every item in one pass over ``B[history, items]``.

        Gathers the ``len(history) x len(item_ids)`` weights once (``explain``
        reads the history's full rows of ``B`` per item) and takes each
        column's first largest contribution, as ``np.argmax`` does there.
        """
        if type(self).explain is not EASE.explain:  # a subclass's own explain rules
            return super().explain_many(artifact, history, item_ids)
        self.check_artifact(artifact)
        answers: list[Any] = [None] * len(item_ids)
        targets, found = positions(artifact, item_ids)
        rows = history_matrix(artifact, [self.folded(history)], binary=self.options.binary)
        columns = rows.indices
        if targets.size == 0 or columns.size == 0:
            return answers
        if "weights" in artifact:
            block = artifact["weights"][columns[:, None], targets]  # np.ix_, cheaper
        else:
            block = artifact.get_csr("weights")[columns][:, targets].toarray()
        contribution = rows.data[:, None] * block
        best = np.argmax(contribution, axis=0)
        # "not <= 0" rather than "> 0": a NaN maximum names an item, as in explain
        named = ~(contribution[best, np.arange(targets.size)] <= 0)
        sources = artifact["item_ids"][columns[best]].tolist()
        for slot, source, ok in zip(np.flatnonzero(found).tolist(), sources, named.tolist(),
                                    strict=True):
            if ok:
                answers[slot] = source
        return answers

    def check(self) -> list[CheckMessage]:
        """personalize.E020: the item ceiling is not a positive integer.

        Whether the catalog exceeds it is checked with the training settings.
        """
        from django.core.checks import Error

        ceiling = self.max_items()
        obj = "PERSONALIZE['EASE_MAX_ITEMS']"
        if isinstance(ceiling, bool) or not isinstance(ceiling, int) or ceiling < 1:
            return [Error(
                f"The EASE item ceiling is {ceiling!r}; it must be a positive integer.",
                hint="Set PERSONALIZE['EASE_MAX_ITEMS'] (or the max_items option) to the "
                     "largest catalog EASE may invert, e.g. 20000.",
                obj=obj, id="personalize.E020",
            )]
        return []


def _product(artifact: Artifact, histories: HistoryRows) -> np.ndarray:
    """``histories @ B`` as float64, one row per history.

    With a dense ``B`` it is either one BLAS product over all of ``B`` or, per
    history, the rows of ``B`` it names gathered and summed, whichever reads
    less (:func:`_full_product_pays`). Float32 throughout: a float64 operand
    would make NumPy copy ``B``.
    """
    if "weights" not in artifact:
        return (histories.tocsr() @ artifact.get_csr("weights")).toarray().astype(np.float64)
    weights = artifact["weights"]
    rows, n = histories.shape
    if _full_product_pays(histories.nnz, rows, n):
        return (histories.toarray() @ weights).astype(np.float64)
    scores = np.empty((rows, n))
    indptr, indices, data = histories.indptr, histories.indices, histories.data
    for row in range(rows):
        start, end = indptr[row], indptr[row + 1]
        scores[row] = data[start:end] @ weights[indices[start:end]]
    return scores


def _full_product_pays(nnz: int, rows: int, n: int) -> bool:
    """Whether a BLAS product over all of ``B`` is cheaper than gathering rows of ``B``.

    Gathering a row of ``B`` costs about 8 rows of a full matrix-vector product
    and about 32 rows of a matrix-matrix product (OpenBLAS, ml-100k's 1,682
    items): a 100-item history of a 1,682-item catalog gathers, a batch of
    evaluation histories multiplies, and a 20,000-item catalog gathers.
    """
    return nnz * (8 if rows == 1 else 32) >= rows * n


def _prune_rows(weights: np.ndarray, keep: int) -> sp.csr_array:
    """Keep the ``keep`` largest-magnitude entries of each row, as CSR."""
    n = weights.shape[0]
    keep = min(keep, weights.shape[1])
    rows, cols, vals = [], [], []
    for start in range(0, n, _SYMMETRISE_ROWS):
        block = weights[start:start + _SYMMETRISE_ROWS]
        top = np.argpartition(-np.abs(block), keep - 1, axis=1)[:, :keep]
        values = np.take_along_axis(block, top, axis=1)
        nonzero = values != 0
        row_ids = np.arange(start, start + len(block))[:, None]
        rows.append(np.broadcast_to(row_ids, top.shape)[nonzero])
        cols.append(top[nonzero])
        vals.append(values[nonzero])
    pruned = sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=weights.shape, dtype=np.float32,
    )
    pruned.sort_indices()
    return pruned
