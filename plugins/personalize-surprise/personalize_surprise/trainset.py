"""Build a Surprise ``Trainset`` straight from the snapshot's sparse ratings.

Surprise's own path (``Dataset.load_from_df`` then ``build_full_trainset``)
walks a DataFrame row by row in Python. Here the ratings CSR is turned into the
same structure with NumPy plus one ``zip`` per direction, and the inner ids
are assigned exactly as ``Dataset.construct_trainset`` would assign them for
the ratings listed in CSR order (users by row, items by first appearance), so
an algorithm fitted here learns what it would learn when given those ratings
through Surprise's own loaders (same random initialisation, same SGD order).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from surprise import Trainset

from personalize.strategies import CannotRecommend, Dataset


class CannotTrain(CannotRecommend, ValueError):
    """The model cannot be trained on this snapshot (no ratings, too large, undefined on them).

    A ``CannotRecommend``: evaluation skips the strategy with the reason and
    training records it as the failed version's note; a ``ValueError`` for
    callers that caught the earlier error.
    """


@dataclass
class RatingData:
    """The ratings a Surprise model trains on, in Surprise's inner order.

    Attributes:
        subject_ids: raw id of each inner user.
        item_ids: raw id of each inner item.
        indptr: CSR row pointers over inner users.
        items: inner item index of each rating, in Surprise's ``ur`` order.
        ratings: the rating values (float64), same order.
        rating_scale: ``(low, high)`` used for clipping.
        source: ``"ratings"`` (explicit) or ``"interactions"`` (implicit
            weights used as ratings, when the snapshot has no ratings).
    """

    subject_ids: np.ndarray
    item_ids: np.ndarray
    indptr: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    rating_scale: tuple[float, float]
    source: str

    @property
    def n_users(self) -> int:
        return len(self.subject_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def users(self) -> np.ndarray:
        """Inner user index of each rating."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr))


def id_array(values: Any) -> np.ndarray:
    """Ids as a NumPy array an artifact can hold (no object dtype: no pickles)."""
    array = np.asarray(values)
    if array.dtype == object:
        array = np.asarray(array.tolist())
        if array.dtype == object:
            array = array.astype(str)
    return array


def rating_data(dataset: Dataset, rating_scale: tuple[float, float] | None = None) -> RatingData:
    """Select the ratings to train on and order them as Surprise would.

    Explicit ratings are used when the snapshot has any; otherwise the implicit
    weights stand in for ratings (stored zeros, e.g. impressions, dropped).

    Raises:
        ValueError: the snapshot has neither ratings nor interactions.
    """
    source = "ratings"
    matrix = dataset.ratings
    if matrix is None or matrix.nnz == 0:
        source = "interactions"
        matrix = sp.csr_array(dataset.interactions, dtype=np.float64, copy=True)
        matrix.eliminate_zeros()
    else:
        matrix = sp.csr_array(matrix)
    if not matrix.has_canonical_format:
        matrix = matrix.copy()
        matrix.sum_duplicates()
    if matrix.nnz == 0:
        raise CannotTrain("The dataset has no ratings and no interactions to train on.")

    counts = np.diff(matrix.indptr)
    rows = np.flatnonzero(counts)  # Surprise only knows users with a rating
    indptr = np.concatenate(([0], np.cumsum(counts[rows]))).astype(np.int64)
    cols = matrix.indices.astype(np.int64, copy=False)
    values = matrix.data.astype(np.float64)
    # Inner item ids in order of first appearance, as construct_trainset does.
    present, first = np.unique(cols, return_index=True)
    inner_to_col = present[np.argsort(first, kind="stable")]
    col_to_inner = np.full(matrix.shape[1], -1, dtype=np.int64)
    col_to_inner[inner_to_col] = np.arange(len(inner_to_col))

    if rating_scale is None:
        meta_scale = (dataset.meta or {}).get("rating_scale")
        if source == "ratings" and meta_scale is not None:
            rating_scale = (float(meta_scale[0]), float(meta_scale[1]))
        else:
            rating_scale = (float(values.min()), float(values.max()))
    return RatingData(
        subject_ids=id_array(dataset.subject_ids)[rows],
        item_ids=id_array(dataset.item_ids)[inner_to_col],
        indptr=indptr,
        items=col_to_inner[cols],
        ratings=values,
        rating_scale=(float(rating_scale[0]), float(rating_scale[1])),
        source=source,
    )


def build_trainset(data: RatingData) -> Trainset:
    """A Surprise ``Trainset`` over ``data`` (raw ids are the dataset's ids)."""
    n_users, n_items = data.n_users, data.n_items
    users = data.users
    item_list = data.items.tolist()
    rating_list = data.ratings.tolist()
    # ur: per user (item, rating) in CSR order; ir: per item (user, rating) by
    # ascending user, which is what construct_trainset produces for CSR order.
    pairs = list(zip(item_list, rating_list, strict=True))
    bounds = data.indptr.tolist()
    ur = defaultdict(list, {u: pairs[bounds[u]:bounds[u + 1]] for u in range(n_users)})
    order = np.argsort(data.items, kind="stable")
    item_counts = np.bincount(data.items, minlength=n_items)
    item_bounds = np.concatenate(([0], np.cumsum(item_counts))).tolist()
    ir_pairs = list(zip(users[order].tolist(), data.ratings[order].tolist(), strict=True))
    ir = defaultdict(
        list, {i: ir_pairs[item_bounds[i]:item_bounds[i + 1]] for i in range(n_items)}
    )
    return Trainset(
        ur, ir, n_users, n_items, len(rating_list), data.rating_scale,
        {raw: inner for inner, raw in enumerate(data.subject_ids.tolist())},
        {raw: inner for inner, raw in enumerate(data.item_ids.tolist())},
    )
