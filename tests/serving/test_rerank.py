"""MMR re-ranking, similarity sources and the intra-list diversity metric."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.serving.catalog import build_index
from personalize.serving.rerank import (
    intra_list_diversity,
    mmr,
    normalised_relevance,
    serving_stats,
    similarity_matrix,
    stats,
)
from personalize.training.active import ActiveModel
from personalize.training.artifacts import Artifact
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import FakeStrategy

# two clusters: 0,1,2 alike; 3,4 alike; nothing shared between clusters
SIM = np.array([
    [1.0, 0.9, 0.9, 0.0, 0.0],
    [0.9, 1.0, 0.9, 0.0, 0.0],
    [0.9, 0.9, 1.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0, 0.9],
    [0.0, 0.0, 0.0, 0.9, 1.0],
])
REL = np.array([1.0, 0.9, 0.8, 0.7, 0.6])


def test_lambda_zero_keeps_the_order():
    assert mmr(REL, SIM, 0.0, 4) == [0, 1, 2, 3]


def test_diversity_pulls_the_other_cluster_up():
    assert mmr(REL, SIM, 0.5, 3) == [0, 3, 1]
    # full diversity: the least similar to what is shown, relevance only breaks ties
    assert mmr(REL, SIM, 1.0, 2) == [0, 3]


def test_items_shown_above_count_as_picked():
    # row/col 0 is an item already in the block, like pool item 0
    sim = np.eye(3)
    sim[0, 1] = sim[1, 0] = 0.95
    assert mmr(np.array([1.0, 0.9]), sim, 0.6, 2, selected=[0]) == [1, 0]


def test_k_larger_than_pool_and_empty_pool():
    assert sorted(mmr(REL, SIM, 0.3, 10)) == [0, 1, 2, 3, 4]
    assert mmr(np.array([]), np.zeros((0, 0)), 0.5, 3) == []


def test_relevance_normalisation():
    assert normalised_relevance(np.array([10.0, 5.0, 0.0])).tolist() == [1.0, 0.5, 0.0]
    assert normalised_relevance(np.array([3.0, 3.0])).tolist() == [1.0, 1.0]
    assert normalised_relevance(np.array([1.0, -np.inf])).tolist() == [1.0, 0.0]


def test_intra_list_diversity():
    assert intra_list_diversity(np.eye(3)) == 1.0
    assert intra_list_diversity(np.ones((3, 3))) == 0.0
    assert intra_list_diversity(np.ones((1, 1))) == 0.0
    assert intra_list_diversity(SIM[:3, :3]) == pytest.approx(0.1)


@pytest.mark.django_db
def test_category_similarity(catalog_items, active_models):
    index = build_index()
    c = catalog_items
    sim = similarity_matrix(index, [c["b1"].pk, c["b2"].pk, c["t1"].pk, c["g1"].pk])
    assert sim[0, 1] == pytest.approx(1.0)
    assert sim[0, 2] == 0.0 and sim[3, 0] == 0.0
    assert np.allclose(np.diag(sim), 1.0)


@pytest.mark.django_db
def test_embeddings_win_where_known(catalog_items, active_models):
    c = catalog_items
    ids = np.asarray(sorted([c["b1"].pk, c["t1"].pk]))
    vectors = np.asarray([[1.0, 0.0], [1.0, 0.0]])  # b1 and t1 look the same to the model
    active_models["embeddings"] = ActiveModel(
        "embeddings", 1, FakeStrategy(),
        Artifact(arrays={"item_ids": ids, "embeddings": vectors}, meta={}))
    index = build_index()
    sim = similarity_matrix(index, [c["b1"].pk, c["t1"].pk, c["b2"].pk])
    assert sim[0, 1] == pytest.approx(1.0)  # from the embeddings
    assert sim[0, 2] == pytest.approx(1.0)  # b2 unknown to the model: categories


@pytest.mark.django_db
def test_item_vectors_hook_is_preferred(catalog_items, active_models):
    c = catalog_items

    class WithVectors(FakeStrategy):
        def item_vectors(self, artifact, item_ids):
            return [[1.0, 0.0] if pk == c["b1"].pk else [0.0, 1.0] for pk in item_ids]

    active_models["embeddings"] = ActiveModel("embeddings", 1, WithVectors(),
                                              Artifact(arrays={}, meta={}))
    sim = similarity_matrix(build_index(), [c["b1"].pk, c["b2"].pk])
    assert sim[0, 1] == pytest.approx(0.0)  # same category, but the vectors disagree


def test_stats_record_mean_diversity():
    stats.record_computed("home", diversity=0.5, n_items=4, fallback=True)
    stats.record_computed("home", diversity=0.7, n_items=4, fallback=False)
    stats.record_computed("home", diversity=None, n_items=0, fallback=False)
    stats.record_hit("home")
    home = serving_stats()["home"]
    assert home["mean_intra_list_diversity"] == pytest.approx(0.6)
    assert (home["computed"], home["cache_hits"], home["fallback_filled"], home["empty"]) == (
        3, 1, 1, 1)
