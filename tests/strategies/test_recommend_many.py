"""``recommend_many`` gives, for every history, what ``recommend`` gives for it alone.

On MovieLens-100k and on the synthetic shop (weights and ratings), with the
histories serving sees: repeated items, weights, ratings, unknown items,
histories of only unknown items and empty ones, and an ``exclude`` list.
"""

from __future__ import annotations

import numpy as np
import pytest

from personalize.dataset import Dataset
from personalize.strategies import ease as ease_module
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend
from personalize.strategies.common import history_matrix, history_vector
from personalize.strategies.ease import EASE
from personalize.strategies.history import History
from personalize.strategies.item_knn import ItemKNN
from personalize.strategies.popularity import Popularity
from personalize.strategies.transitions import Transitions


@pytest.fixture(scope="module")
def movielens(data_dir):
    return Dataset.from_file("ml100k", data_dir / "movielens-100k")


def histories_of(dataset: Dataset, n: int, seed: int = 0) -> list[History]:
    """Real histories of ``n`` subjects, and variations of some of them."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(dataset.subject_ids, size=n, replace=False).tolist()
    histories = [History.from_dataset(dataset, subject) for subject in chosen]
    unknown = int(dataset.item_ids.max()) + 1000
    varied = []
    for number, history in enumerate(histories[: n // 2]):
        ids = list(history.item_ids)
        weights = rng.choice([0.5, 1.0, 2.0, 8.0], size=len(ids)).tolist()
        repeated = ids[: len(ids) // 3]
        if number % 3 == 0:  # repeated items, with their own weights
            ids, weights = ids + repeated, weights + [3.0] * len(repeated)
        if number % 3 == 1:  # unknown items among known ones
            ids, weights = [unknown, *ids, unknown + 1], [1.0, *weights, 1.0]
        varied.append(History(item_ids=ids, weights=weights, ratings=history.ratings,
                              subject_id=history.subject_id))
    return [
        *histories, *varied,
        History(item_ids=[unknown, unknown + 7]),  # nothing known: cannot answer
        History(),
        History(item_ids=dataset.item_ids[:400].tolist()),  # long: a full product alone
        History(item_ids=dataset.item_ids[7:9].tolist(), weights=[1.0, -1.0]),  # cancels
    ]


def one_by_one(strategy, artifact, histories, k, exclude):
    lists = []
    for history in histories:
        try:
            lists.append(strategy.recommend(artifact, history, k, exclude))
        except CannotRecommend:
            lists.append(None)
    return lists


def assert_same_lists(batch, single, exact_scores=False):
    assert len(batch) == len(single)
    for got, expected in zip(batch, single, strict=True):
        if expected is None:
            assert got is None
            continue
        assert [item for item, _ in got] == [item for item, _ in expected]
        got_scores = np.array([score for _, score in got])
        expected_scores = np.array([score for _, score in expected])
        if exact_scores:
            assert got_scores.tolist() == expected_scores.tolist()
        else:  # float32 products summed in another order
            assert np.allclose(got_scores, expected_scores, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("full_product", [True, False])
@pytest.mark.parametrize("options", [{}, {"binary": False, "l2": 2000.0}, {"top_entries": 60},
                                     {"recency_half_life": 10, "recency_half_life_days": 30}])
def test_ease_batch_equals_one_by_one(movielens, monkeypatch, options, full_product):
    strategy = EASE(**options)
    artifact = strategy.fit(movielens)
    histories = histories_of(movielens, 120)
    exclude = movielens.item_ids[[0, 5, 50]].tolist()
    single = one_by_one(strategy, artifact, histories, 10, exclude)
    assert sum(item is None for item in single) == 2
    # either way of multiplying a batch gives the same lists
    monkeypatch.setattr(ease_module, "_full_product_pays", lambda nnz, rows, n: full_product)
    assert_same_lists(strategy.recommend_many(artifact, histories, 10, exclude), single)


def test_ease_scores_are_the_summed_rows_of_b(movielens):
    artifact = EASE().fit(movielens)
    history = histories_of(movielens, 2)[0]
    vector, columns = history_vector(artifact, history, len(artifact["item_ids"]), binary=True)
    expected = vector[columns].astype(np.float64) @ artifact["weights"][columns]
    assert np.allclose(EASE().item_scores(artifact, history), expected, rtol=1e-5, atol=1e-7)


def test_a_fitted_ease_artifact_is_row_major(movielens):
    # scoring gathers rows of B: they must be contiguous
    assert EASE().fit(movielens)["weights"].flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("options", [{}, {"binary": True, "neighbours": 20},
                                     {"recency_half_life": 2}])
def test_item_knn_batch_equals_one_by_one(shop, options):
    strategy = ItemKNN(**options)
    artifact = strategy.fit(shop)
    histories = histories_of(shop, 40)
    single = one_by_one(strategy, artifact, histories, 5, [101])
    # each row is summed in the same order alone or in a batch: identical scores
    assert_same_lists(strategy.recommend_many(artifact, histories, 5, [101]), single,
                      exact_scores=True)


@pytest.mark.parametrize("options", [{}, {"window": 2, "history_half_life_days": 3.0}])
def test_transitions_batch_equals_one_by_one(movielens, options):
    strategy = Transitions(**options)
    artifact = strategy.fit(movielens)
    histories = histories_of(movielens, 60)
    single = one_by_one(strategy, artifact, histories, 10, [1, 50])
    assert sum(item is None for item in single) == 2
    assert_same_lists(strategy.recommend_many(artifact, histories, 10, [1, 50]), single)


def test_popularity_batch_equals_one_by_one(shop):
    strategy = Popularity(per_category=True)
    artifact = strategy.fit(shop)
    histories = histories_of(shop, 20)
    assert_same_lists(strategy.recommend_many(artifact, histories, 7),
                      one_by_one(strategy, artifact, histories, 7, ()), exact_scores=True)


def test_batches_of_many_blocks(movielens, monkeypatch):
    from personalize.strategies import common

    strategy = EASE()
    artifact = strategy.fit(movielens)
    histories = histories_of(movielens, 30)
    whole = strategy.recommend_many(artifact, histories, 10)
    monkeypatch.setattr(common, "_BLOCK_CELLS", 4000)  # two histories per block
    assert_same_lists(strategy.recommend_many(artifact, histories, 10), whole)


def test_k_of_zero_and_more_than_the_catalog(shop):
    strategy = ItemKNN()
    artifact = strategy.fit(shop)
    histories = histories_of(shop, 6)
    assert strategy.recommend_many(artifact, histories, 0) == [[]] * len(histories)
    assert_same_lists(strategy.recommend_many(artifact, histories, 500),
                      one_by_one(strategy, artifact, histories, 500, ()), exact_scores=True)


def test_a_subclass_that_ranks_its_own_way_is_looped_over(shop):
    class Shuffled(ItemKNN):
        def recommend(self, artifact, history, k, exclude=()):
            return list(reversed(super().recommend(artifact, history, k, exclude)))

    strategy = Shuffled()
    artifact = strategy.fit(shop)
    histories = histories_of(shop, 6)
    assert strategy.recommend_many(artifact, histories, 4) == one_by_one(
        strategy, artifact, histories, 4, ())


def test_history_matrix_sums_repeats_and_keeps_known_items():
    artifact = Artifact(arrays={"item_ids": np.array([1, 2, 3])})
    histories = [History(item_ids=[1, 3, 1, 8], weights=[1.0, 2.0, 4.0, 9.0]),
                 History(item_ids=[9]), History(item_ids=[2, 2], weights=[1.5, -1.5])]
    matrix = history_matrix(artifact, histories)
    assert matrix.dtype == np.float32
    assert matrix.toarray().tolist() == [[5.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    # weights that cancel leave a stored 0: the item is still known (and seen)
    assert np.diff(matrix.indptr).tolist() == [2, 0, 1]
    assert matrix.nnz == 3
    assert matrix.tocsr().toarray().tolist() == matrix.toarray().tolist()
    binary = history_matrix(artifact, histories, binary=True)
    assert binary.toarray().tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]




def test_binary_history_matrix_counts_each_item_by_its_latest_recency():
    artifact = Artifact(arrays={"item_ids": np.array([1, 2, 3])})
    histories = [History(item_ids=[1, 3, 1, 8], weights=[0.25, 4.0, 8.0, 1.0],
                         recency=[0.25, 0.5, 1.0, 1.0]),
                 History(item_ids=[2, 3], weights=[3.0, 1.0])]  # no recency: 1 per item
    binary = history_matrix(artifact, histories, binary=True)
    assert binary.toarray().tolist() == [[1.0, 0.0, 0.5], [0.0, 1.0, 1.0]]
