"""Item kNN: shrunk cosine, top-k neighbours, scoring, similar() and explain()."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.dataset import Dataset
from personalize.strategies import item_knn
from personalize.strategies.base import CannotRecommend
from personalize.strategies.history import History
from personalize.strategies.item_knn import ItemKNN


@pytest.fixture
def tiny():
    # subjects x items (ids 1..4):
    #   s1: 1 2      s2: 1 2 3      s3: 3 4      s4: 1
    pairs = [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 3), (3, 4), (4, 1)]
    return Dataset.from_arrays([s for s, _ in pairs], [i for _, i in pairs], "view",
                               timestamps=list(range(len(pairs))))


def reference_similarity(dataset, shrinkage=0.0, exponent=1.0):
    x = np.asarray(dataset.interactions.toarray(), dtype=np.float64)
    x[x < 0] = 0
    norms = np.linalg.norm(x, axis=0)
    sims = (x.T @ x) / (np.outer(norms, norms) + shrinkage + 1e-12)
    np.fill_diagonal(sims, 0)
    return sims ** exponent


def neighbours(artifact):
    return np.asarray(artifact.get_csr("neighbours").toarray())


def test_cosine_similarity_matches_a_dense_reference(tiny):
    artifact = ItemKNN(shrinkage=0.0).fit(tiny)
    assert np.allclose(neighbours(artifact), reference_similarity(tiny), atol=1e-6)
    # items 1 and 2 share 2 subjects; |1| = sqrt(3), |2| = sqrt(2)
    assert neighbours(artifact)[0, 1] == pytest.approx(2 / np.sqrt(6), rel=1e-6)


def test_shrinkage_and_exponent(tiny):
    artifact = ItemKNN(shrinkage=2.0, similarity_exponent=2.0).fit(tiny)
    assert np.allclose(neighbours(artifact), reference_similarity(tiny, 2.0, 2.0), atol=1e-6)


def test_each_item_keeps_its_top_neighbours(tiny):
    artifact = ItemKNN(neighbours=1, shrinkage=0.0).fit(tiny)
    matrix = neighbours(artifact)
    assert (np.count_nonzero(matrix, axis=1) <= 1).all()
    # item 3's best neighbour is item 4 (cosine 1/sqrt(2) vs 1/sqrt(6) and 1/2)
    assert np.flatnonzero(matrix[2]).tolist() == [3]


def test_min_similarity_drops_weak_neighbours(tiny):
    artifact = ItemKNN(shrinkage=0.0, min_similarity=0.6).fit(tiny)
    assert neighbours(artifact).min() == 0.0
    assert (neighbours(artifact)[neighbours(artifact) > 0] > 0.6).all()


def test_block_computation_equals_one_block(shop, monkeypatch):
    whole = neighbours(ItemKNN(neighbours=5).fit(shop))
    monkeypatch.setattr(item_knn, "_BLOCK_CELLS", shop.n_items * 3)  # blocks of 3 columns
    blocked = neighbours(ItemKNN(neighbours=5).fit(shop))
    assert np.allclose(whole, blocked)


def test_scores_are_weighted_sums_of_neighbour_similarities(tiny):
    strategy = ItemKNN(shrinkage=0.0)
    artifact = strategy.fit(tiny)
    sims = reference_similarity(tiny)
    history = History(item_ids=[1, 3], weights=[2.0, 1.0])
    result = dict(strategy.recommend(artifact, history, 10))
    assert set(result) == {2, 4}
    assert result[2] == pytest.approx(2 * sims[0, 1] + sims[2, 1], rel=1e-5)
    assert result[4] == pytest.approx(sims[2, 3], rel=1e-5)


def test_binary_ignores_weights(tiny):
    strategy = ItemKNN(shrinkage=0.0, binary=True)
    artifact = strategy.fit(tiny)
    one = strategy.recommend(artifact, History(item_ids=[1, 3], weights=[5.0, 1.0]), 10)
    two = strategy.recommend(artifact, History(item_ids=[1, 3]), 10)
    assert one == two


def test_unsupported_items_are_not_recommended(tiny):
    strategy = ItemKNN(shrinkage=0.0)
    artifact = strategy.fit(tiny)
    # item 4 only co-occurs with 3: a history of 2 gives it no support
    assert [i for i, _ in strategy.recommend(artifact, History(item_ids=[2]), 10)] == [1, 3]


def test_history_whose_items_have_no_neighbours_gets_no_list_and_no_error():
    # items 3 and 4 are each seen once, by different subjects: neither has a neighbour
    pairs = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3), (4, 4)]
    dataset = Dataset.from_arrays([s for s, _ in pairs], [i for _, i in pairs], "view",
                                  timestamps=list(range(len(pairs))))
    strategy = ItemKNN(shrinkage=0.0)
    artifact = strategy.fit(dataset)
    assert strategy.recommend(artifact, History(item_ids=[3]), 5) == []
    scores, answered = strategy.item_scores_many(
        artifact, [History(item_ids=[3]), History(item_ids=[4])])
    assert scores.dtype == np.float64 and np.isneginf(scores).all()
    assert answered.tolist() == [True, True]


def test_empty_or_unknown_history_cannot_be_answered(tiny):
    strategy = ItemKNN()
    artifact = strategy.fit(tiny)
    with pytest.raises(CannotRecommend):
        strategy.recommend(artifact, History(), 5)
    with pytest.raises(CannotRecommend):
        strategy.recommend(artifact, History(item_ids=[99]), 5)


def test_similar_and_explain(tiny):
    strategy = ItemKNN(shrinkage=0.0)
    artifact = strategy.fit(tiny)
    similar = strategy.similar(artifact, 3, 5)
    assert [i for i, _ in similar] == [4, 2, 1]
    assert [i for i, _ in strategy.similar(artifact, 3, 5, exclude=[4])] == [2, 1]
    assert strategy.explain(artifact, History(item_ids=[1, 4]), 3) == 4
    assert strategy.explain(artifact, History(item_ids=[2]), 4) is None


def test_string_ids(tiny):
    ds = Dataset.from_arrays(["a", "a", "b", "b"], ["x", "y", "x", "y"], "view",
                             timestamps=[1, 2, 3, 4])
    strategy = ItemKNN()
    artifact = strategy.fit(ds)
    assert strategy.recommend(artifact, History(item_ids=["x"]), 3)[0][0] == "y"


@pytest.mark.parametrize(("options", "message"), [
    ({"neighbours": 0}, "neighbours must be a positive integer"),
    ({"shrinkage": -1}, "shrinkage must be >= 0"),
    ({"similarity_exponent": 0}, "similarity_exponent must be positive"),
    ({"min_similarity": -0.1}, "min_similarity must be >= 0"),
])
def test_options_are_validated(options, message):
    with pytest.raises(ValueError, match=message):
        ItemKNN(**options)
