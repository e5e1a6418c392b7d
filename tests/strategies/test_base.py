"""The base class's defaults: ``recommend_many`` as a loop, ``top_k_rows`` and ``top_k_set``."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.strategies.base import (
    CannotRecommend,
    History,
    Strategy,
    top_k,
    top_k_rows,
    top_k_set,
)
from personalize.training.artifacts import Artifact


class Echo(Strategy):
    """Recommends the history's own items reversed; cannot answer an empty one."""

    def fit(self, dataset):
        return Artifact()

    def recommend(self, artifact, history, k, exclude=()):
        if history.subject_id == "broken":
            raise RuntimeError("a bug")
        if not history.item_ids:
            raise CannotRecommend("nothing to echo")
        excluded = set(exclude)
        kept = [i for i in reversed(history.item_ids) if i not in excluded]
        return [(item, 1.0) for item in kept[:k]]


def test_recommend_many_loops_over_recommend():
    histories = [History(item_ids=[1, 2, 3]), History(), History(item_ids=[4])]
    lists = Echo().recommend_many(Artifact(), histories, 2, exclude=iter([2]))
    # the exclude iterable is read once and applies to every history
    assert lists == [[(3, 1.0), (1, 1.0)], None, [(4, 1.0)]]


def test_recommend_many_lets_other_errors_through():
    with pytest.raises(RuntimeError):
        Echo().recommend_many(Artifact(), [History(item_ids=[1], subject_id="broken")], 5)


@pytest.mark.parametrize("k", [0, 1, 3, 7, 12, 15])
def test_top_k_rows_is_top_k_of_each_row(k):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=(40, 12)).astype(np.float64)  # many ties
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[5] = -np.inf  # nothing to recommend
    scores[6, :2] = [7.0, 7.0]  # a tie at the top
    rows = top_k_rows(scores, k)
    assert len(rows) == len(scores)
    for row, best in zip(scores, rows, strict=True):
        assert best.tolist() == top_k(row, k).tolist()


def test_top_k_rows_of_no_rows():
    assert top_k_rows(np.empty((0, 4)), 3) == []


@pytest.mark.parametrize("k", [0, 1, 3, 7, 12, 15])
def test_top_k_set_holds_what_top_k_returns(k):
    # ties at the boundary included: the set must be top_k's own choice among them
    rng = np.random.default_rng(4)
    for row in rng.integers(0, 4, size=(200, 12)).astype(np.float64):
        row[rng.random(row.shape) < 0.3] = -np.inf
        row[rng.random(row.shape) < 0.05] = np.nan
        assert sorted(top_k_set(row, k).tolist()) == sorted(top_k(row, k).tolist())


@pytest.mark.parametrize("k", [1, 3, 7, 12])
def test_top_k_set_excluded_is_minus_infinity(k):
    rng = np.random.default_rng(5)
    for row in rng.integers(0, 4, size=(200, 12)).astype(np.float64):
        row[rng.random(row.shape) < 0.05] = np.nan
        excluded = rng.random(row.shape) < 0.3
        before = row.copy()
        assert top_k_set(row, k, excluded=excluded).tolist() == \
            top_k_set(np.where(excluded, -np.inf, row), k).tolist()
        np.testing.assert_array_equal(row, before)  # the caller's scores stay as they were


def test_top_k_set_of_nothing_finite():
    assert top_k_set(np.full(5, -np.inf), 3).size == 0
    assert top_k_set(np.empty(0), 3).size == 0
