"""MMR re-ranking, similarity sources and the intra-list diversity metric."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.serving.catalog import build_index
from personalize.serving.loader import ActiveModel
from personalize.serving.rerank import (
    intra_list_diversity,
    mmr,
    normalised_relevance,
    similarity_matrix,
)
from personalize.serving.stats import serving_stats, stats
from personalize.strategies.artifacts import Artifact
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


def _reference_mmr(relevance, similarity, lam, k, offset=0):
    """MMR spelled out item by item, as the module docstring defines it."""
    rel = normalised_relevance(relevance)
    chosen: list[int] = []
    for _ in range(min(k, len(rel))):
        def gain(i):
            shown = list(range(offset)) + [offset + j for j in chosen]
            penalty = max((similarity[offset + i, s] for s in shown), default=0.0)
            return (1 - lam) * rel[i] - lam * penalty
        chosen.append(max((i for i in range(len(rel)) if i not in chosen),
                          key=lambda i: (gain(i), -i)))
    return chosen


@pytest.mark.parametrize("lam", [0.2, 0.5, 1.0])
@pytest.mark.parametrize("offset", [0, 2])
def test_mmr_matches_the_definition_with_negative_similarities(lam, offset):
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(12 + offset, 3))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = vectors @ vectors.T  # cosines, many of them negative
    relevance = rng.normal(size=12)
    got = mmr(relevance, sim, lam, 6, selected=range(offset))
    assert got == _reference_mmr(relevance, sim, lam, 6, offset)


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
def test_category_similarity_is_the_cosine_of_memberships(db, active_models):
    from personalize.models import Item

    made = [Item.objects.create(external_id=f"m{n}", categories=cats) for n, cats in enumerate(
        [["A", "B"], ["B"], ["A", "B", "C"], [], ["C"]])]
    index = build_index()
    rows, _ = index.positions([item.pk for item in made])
    names = index.category_names
    dense = np.array([[float(name in item.categories) for name in names] for item in made])
    norms = np.linalg.norm(dense, axis=1)
    unit = dense / np.where(norms > 0, norms, 1.0)[:, None]
    assert np.allclose(index.category_similarity(rows), unit @ unit.T)
    # a pk the catalog does not know is like nothing but itself
    sim = similarity_matrix(index, [made[0].pk, 10**9, made[2].pk])
    assert sim[0, 1] == sim[1, 2] == 0.0 and sim[1, 1] == 1.0
    assert sim[0, 2] == pytest.approx(2 / np.sqrt(6))


@pytest.mark.django_db
def test_preferred_category_sums_positive_weights(db):
    from personalize.models import Item

    a = Item.objects.create(external_id="a", categories=["Books", "Tools"])
    b = Item.objects.create(external_id="b", categories=["Tools"])
    c = Item.objects.create(external_id="c", categories=["Books"])
    index = build_index()
    assert index.preferred_category([a.pk, b.pk], None) == "Tools"
    assert index.preferred_category([a.pk, b.pk, c.pk], [1.0, 1.0, 3.0]) == "Books"
    assert index.preferred_category([a.pk, b.pk, c.pk], None) == "Books"  # a tie: the first name
    # a negative weight (a dislike) counts as nothing, not against the category
    assert index.preferred_category([b.pk, c.pk], [-5.0, 1.0]) == "Books"
    assert index.preferred_category([b.pk], [-1.0]) is None
    assert index.preferred_category([10**9], None) is None


class Embedded(FakeStrategy):
    """Item vectors from ``artifact["embeddings"]`` (rows by ``item_ids``; zeros if unknown)."""

    def item_vectors(self, artifact, item_ids):
        rows = {pk: n for n, pk in enumerate(artifact["item_ids"].tolist())}
        vectors = np.zeros((len(item_ids), artifact["embeddings"].shape[1]))
        for n, pk in enumerate(item_ids):
            if pk in rows:
                vectors[n] = artifact["embeddings"][rows[pk]]
        return vectors


def embedded(pks, vectors) -> ActiveModel:
    order = np.argsort(pks)
    return ActiveModel("embeddings", 1, Embedded(), Artifact(
        arrays={"item_ids": np.asarray(pks)[order], "embeddings": np.asarray(vectors)[order]}))


@pytest.mark.django_db
def test_embeddings_win_where_known(catalog_items, active_models):
    c = catalog_items
    # b1 and t1 look the same to the model
    active_models["embeddings"] = embedded([c["b1"].pk, c["t1"].pk], [[1.0, 0.0], [1.0, 0.0]])
    sim = similarity_matrix(build_index(), [c["b1"].pk, c["t1"].pk, c["b2"].pk])
    assert sim[0, 1] == pytest.approx(1.0)  # from the embeddings
    assert sim[0, 2] == pytest.approx(1.0)  # b2 unknown to the model: categories


@pytest.mark.django_db
def test_a_strategy_without_item_vectors_leaves_it_to_the_categories(catalog_items,
                                                                     active_models):
    c = catalog_items
    active_models["embeddings"] = ActiveModel("embeddings", 1, FakeStrategy(), Artifact())
    sim = similarity_matrix(build_index(), [c["b1"].pk, c["b2"].pk, c["t1"].pk])
    assert sim[0, 1] == pytest.approx(1.0) and sim[0, 2] == pytest.approx(0.0)


@pytest.mark.django_db
def test_item_vectors_are_scaled_to_unit_length(catalog_items, active_models):
    # vectors need not be unit length; NaN entries read as 0; a zero row is unknown
    c = catalog_items
    pks = [c["b1"].pk, c["b2"].pk, c["t1"].pk]
    active_models["embeddings"] = embedded(pks, [[3.0, 0.0], [1.0, 1.0], [np.nan, 2.0]])
    sim = similarity_matrix(build_index(), pks)
    assert sim[0, 1] == pytest.approx(1 / np.sqrt(2))
    assert sim[0, 2] == pytest.approx(0.0)  # [nan, 2] reads as [0, 1]
    assert sim[1, 2] == pytest.approx(1 / np.sqrt(2))
    active_models["embeddings"] = embedded(pks, np.zeros((3, 2)))
    # every row zero: nothing is known, so the categories decide (b1 and b2 share one)
    sim = similarity_matrix(build_index(), pks)
    assert sim[0, 1] == pytest.approx(1.0)
    assert sim[0, 2] == pytest.approx(0.0)


def test_stats_record_mean_diversity():
    stats.record_computed("home", diversity=0.5, n_items=4, fallback=True)
    stats.record_computed("home", diversity=0.7, n_items=4, fallback=False)
    stats.record_computed("home", diversity=None, n_items=0, fallback=False)
    stats.record_hit("home")
    home = serving_stats()["home"]
    assert home["mean_intra_list_diversity"] == pytest.approx(0.6)
    assert (home["computed"], home["cache_hits"], home["fallback_filled"], home["empty"]) == (
        3, 1, 1, 1)
