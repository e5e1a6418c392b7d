"""The embeddings strategy: profiles, cold start, similar items, ANN wiring, round trip."""

from __future__ import annotations

import pytest

pytest.importorskip("personalize_embeddings", reason="the personalize-embeddings plugin is not installed")

import sys
import types
from importlib import metadata

import numpy as np
from embeddings_factories import CATALOG, make_dataset
from personalize_embeddings import Embeddings
from personalize_embeddings import ann as ann_module

from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend
from personalize.strategies.history import History


def ids(scored):
    return [item for item, _ in scored]


def test_fit_stores_unit_float32_vectors(catalog_artifact):
    vectors = catalog_artifact["vectors"]
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(CATALOG), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert catalog_artifact["item_ids"].tolist() == list(CATALOG)
    assert catalog_artifact["text_hashes"].dtype == np.uint64
    assert len(set(catalog_artifact["text_hashes"].tolist())) == len(CATALOG)
    assert catalog_artifact.meta["model"] == "all-MiniLM-L6-v2"
    assert catalog_artifact.meta["ann"] == "exact"


def test_vectors_are_the_models_embeddings(model, catalog_artifact):
    expected = model.encode([CATALOG["flask"]], normalize_embeddings=True)[0]
    row = catalog_artifact.index_of()["flask"]
    np.testing.assert_allclose(catalog_artifact["vectors"][row], expected, atol=1e-5)


def test_cold_start_item_recommended_to_a_textually_close_history(catalog_artifact):
    # "clamp" has no interaction at all in the snapshot: it is scored by content.
    recs = Embeddings().recommend(catalog_artifact, History(item_ids=["meter"]), k=3)
    assert ids(recs)[0] == "clamp"
    gloves = Embeddings().recommend(catalog_artifact, History(item_ids=["latex"]), k=1)
    assert ids(gloves) == ["nitrile"]


def test_profile_is_the_weighted_mean_and_scores_are_one_product(catalog_artifact):
    strategy = Embeddings(recency_half_life=None)
    history = History(item_ids=["meter", "beaker"], weights=[3.0, 1.0])
    vectors = catalog_artifact["vectors"]
    index = catalog_artifact.index_of()
    mean = 3.0 * vectors[index["meter"]] + 1.0 * vectors[index["beaker"]]
    profile = mean / np.linalg.norm(mean)
    np.testing.assert_allclose(strategy.fold_in(catalog_artifact, history), profile, atol=1e-6)
    recs = strategy.recommend(catalog_artifact, history, k=10)
    assert {"meter", "beaker"}.isdisjoint(ids(recs))
    assert len(recs) == len(CATALOG) - 2
    for item, score in recs:
        assert score == pytest.approx(float(vectors[index[item]] @ profile), abs=1e-5)
    assert [s for _, s in recs] == sorted((s for _, s in recs), reverse=True)


def test_recency_half_life_favours_recent_history(catalog_artifact):
    history = History(item_ids=["nitrile", "meter"], timestamps=[0.0, 30 * 86_400.0])
    flat = Embeddings(recency_half_life=None).recommend(catalog_artifact, history, k=6)
    recent = Embeddings(recency_half_life=None, half_life_days=3.0).recommend(catalog_artifact, history, k=6)
    assert ids(recent)[0] == "clamp"
    assert ids(recent).index("latex") > ids(flat).index("latex")
    by_position = Embeddings(half_life_events=0.5).fold_in(catalog_artifact, history)
    by_time = Embeddings(recency_half_life=None,
                         half_life_days=15.0).fold_in(catalog_artifact, history)
    np.testing.assert_allclose(by_position, by_time, atol=1e-6)  # both weight 1 : 0.25


def test_profile_is_the_recency_and_event_weighted_mean(catalog_artifact):
    # three items, event weights 2, 1, 4; a half-life of 1 interaction -> factors 1/4, 1/2, 1
    history = History(item_ids=["meter", "beaker", "flask"], weights=[2.0, 1.0, 4.0])
    vectors = catalog_artifact["vectors"]
    index = catalog_artifact.index_of()
    mean = (2.0 * 0.25 * vectors[index["meter"]] + 1.0 * 0.5 * vectors[index["beaker"]]
            + 4.0 * 1.0 * vectors[index["flask"]]) / (0.5 + 0.5 + 4.0)
    profile = Embeddings(recency_half_life=1).fold_in(catalog_artifact, history)
    np.testing.assert_allclose(profile, mean / np.linalg.norm(mean), atol=1e-6)
    # per day: the same factors from timestamps 2 days, 1 day and 0 days before the latest
    stamped = History(item_ids=history.item_ids, weights=history.weights,
                      timestamps=[0.0, 86_400.0, 2 * 86_400.0])
    by_days = Embeddings(recency_half_life=None,
                         recency_half_life_days=1).fold_in(catalog_artifact, stamped)
    np.testing.assert_allclose(by_days, profile, atol=1e-6)
    # the default halves every interaction; a half-life of 3 gives factors 2 ** (-age / 3)
    np.testing.assert_allclose(Embeddings().fold_in(catalog_artifact, history), profile)
    default = Embeddings(recency_half_life=3).fold_in(catalog_artifact, history)
    factors = 2.0 ** (-np.array([2.0, 1.0, 0.0]) / 3.0) * np.array([2.0, 1.0, 4.0])
    expected = factors @ vectors[[index["meter"], index["beaker"], index["flask"]]]
    np.testing.assert_allclose(default, expected / np.linalg.norm(expected), atol=1e-6)


def test_exclude_and_history_are_never_returned(catalog_artifact):
    recs = Embeddings().recommend(catalog_artifact, History(item_ids=["meter"]), k=100,
                                  exclude=["clamp", "unknown-id"])
    assert "clamp" not in ids(recs)
    assert "meter" not in ids(recs)
    assert len(recs) == len(CATALOG) - 2


def test_nothing_to_go_on_raises_cannot_recommend(catalog_artifact):
    strategy = Embeddings()
    with pytest.raises(CannotRecommend):
        strategy.recommend(catalog_artifact, History(), k=3)
    with pytest.raises(CannotRecommend):
        strategy.recommend(catalog_artifact, History(item_ids=["not-an-item"]), k=3)
    with pytest.raises(CannotRecommend):
        strategy.recommend(catalog_artifact, History(item_ids=["meter"], weights=[0.0]), k=3)
    assert strategy.fold_in(catalog_artifact, History()) is None


def test_seen_everything_gives_nothing(catalog_artifact):
    assert Embeddings().recommend(catalog_artifact, History(item_ids=list(CATALOG)), k=3) == []


def test_similar_items(catalog_artifact):
    strategy = Embeddings()
    assert ids(strategy.similar(catalog_artifact, "beaker", k=1)) == ["flask"]
    similar = strategy.similar(catalog_artifact, "latex", k=3, exclude=["nitrile"])
    assert "nitrile" not in ids(similar)
    assert "latex" not in ids(similar)
    with pytest.raises(CannotRecommend):
        strategy.similar(catalog_artifact, "not-an-item", k=3)


def test_explain_names_the_most_similar_history_item(catalog_artifact):
    history = History(item_ids=["tape", "nitrile", "meter"])
    assert Embeddings().explain(catalog_artifact, history, "clamp") == "meter"
    assert Embeddings().explain(catalog_artifact, history, "latex") == "nitrile"
    assert Embeddings().explain(catalog_artifact, History(), "latex") is None


def test_items_without_text_are_never_recommended(model):
    texts = {**CATALOG, "blank": ""}
    artifact = Embeddings().fit(make_dataset(texts))
    row = artifact.index_of()["blank"]
    assert not artifact["vectors"][row].any()
    assert artifact["text_hashes"][row] == 0
    recs = Embeddings().recommend(artifact, History(item_ids=["meter"]), k=100)
    assert "blank" not in ids(recs)
    with pytest.raises(CannotRecommend):
        Embeddings().similar(artifact, "blank", k=3)


def test_round_trip_through_bytes(catalog_artifact):
    loaded = Artifact.from_bytes(catalog_artifact.to_bytes())
    history = History(item_ids=["meter", "latex"])
    assert Embeddings().recommend(loaded, history, k=4) == \
        Embeddings().recommend(catalog_artifact, history, k=4)


def test_refit_without_changes_encodes_nothing(catalog_artifact, count_encodes):
    again = Embeddings().fit(make_dataset(CATALOG), previous_artifact=catalog_artifact)
    assert count_encodes == []
    assert again.meta["encoded"] == 0
    np.testing.assert_array_equal(again["vectors"], catalog_artifact["vectors"])


@pytest.mark.parametrize(("options", "named"), [
    ({"batch_size": 0}, "batch_size"),
    ({"ann": "faiss"}, "ann"),
    ({"half_life_days": 0}, "half_life_days"),
    ({"half_life_events": -1}, "half_life_events"),
    ({"recency_half_life": 0}, "recency_half_life"),
    ({"recency_half_life_days": "7"}, "recency_half_life_days"),
    ({"recency_half_life_days": 2, "half_life_days": 2}, "Set recency_half_life_days"),
    ({"recency_half_life": 2, "half_life_events": 2}, "Set recency_half_life"),
    ({"model": ""}, "model"),
    ({"device": ""}, "device"),
    ({"normalize": "yes"}, "normalize"),
    ({"max_history": 0}, "max_history"),
])
def test_invalid_options_name_the_option(options, named):
    with pytest.raises(ValueError, match=f"^{named} "):
        Embeddings(**options)


def test_published_under_the_entry_point_group(settings):
    from personalize.strategies.registry import get_strategy

    published = {ep.name: ep.value for ep in metadata.entry_points(group="personalize.strategies")}
    assert published["embeddings"] == "personalize_embeddings.strategy:Embeddings"
    settings.PERSONALIZE = {**settings.PERSONALIZE, "STRATEGIES": {}}
    assert isinstance(get_strategy("embeddings"), Embeddings)


# ------------------------------------------------------------------ ANN
def test_hnsw_without_hnswlib_is_a_clear_error(monkeypatch, model):
    monkeypatch.setattr(ann_module, "hnswlib_available", lambda: False)
    with pytest.raises(ann_module.ANNUnavailable, match="ann='hnsw' needs the hnswlib package"):
        Embeddings(ann="hnsw").fit(make_dataset(CATALOG))
    # auto quietly stays exact
    assert Embeddings(ann="auto", ann_threshold=2).fit(make_dataset(CATALOG)).meta["ann"] == "exact"


class _FakeIndex:
    """Just enough of hnswlib.Index (exact search) to test the plugin's wiring."""

    def __init__(self, space, dim):
        assert space == "ip"
        self.dim, self.vectors, self.labels, self.ef = dim, np.zeros((0, dim)), [], 10

    def init_index(self, max_elements, ef_construction, M, random_seed):
        self.max_elements = max_elements

    def add_items(self, data, ids):
        self.vectors = np.vstack([self.vectors, data])
        self.labels += list(ids)

    def save_index(self, path):
        np.save(path + ".npy", self.vectors)
        np.save(path + ".labels.npy", np.asarray(self.labels))
        with open(path, "wb") as handle:
            handle.write(np.ascontiguousarray(self.vectors, dtype=np.float32).tobytes()
                         + np.asarray(self.labels, dtype=np.int64).tobytes())

    def load_index(self, path, max_elements):
        with open(path, "rb") as handle:
            raw = handle.read()
        n = len(raw) // (self.dim * 4 + 8)
        self.vectors = np.frombuffer(raw[:n * self.dim * 4], dtype=np.float32).reshape(n, -1)
        self.labels = np.frombuffer(raw[n * self.dim * 4:], dtype=np.int64).tolist()

    def set_ef(self, ef):
        self.ef = ef

    def get_current_count(self):
        return len(self.labels)

    def knn_query(self, data, k):
        sims = self.vectors @ data[0]
        order = np.argsort(-sims)[:k]
        return np.asarray([self.labels[i] for i in order])[None], (1 - sims[order])[None]


def test_hnsw_index_is_stored_and_queried(monkeypatch, catalog_artifact, model):
    fake = types.ModuleType("hnswlib")
    fake.Index = _FakeIndex
    monkeypatch.setitem(sys.modules, "hnswlib", fake)
    monkeypatch.setattr(ann_module, "hnswlib_available", lambda: True)
    strategy = Embeddings(ann="hnsw")
    artifact = strategy.fit(make_dataset(CATALOG), previous_artifact=catalog_artifact)
    assert artifact.meta["ann"] == "hnsw"
    assert artifact["hnsw_index"].dtype == np.uint8
    loaded = Artifact.from_bytes(artifact.to_bytes())
    history = History(item_ids=["meter", "latex"])
    via_index = strategy.recommend(loaded, history, k=3, exclude=["clamp"])
    exact = Embeddings().recommend(catalog_artifact, history, k=3, exclude=["clamp"])
    assert ids(via_index) == ids(exact)
    np.testing.assert_allclose([s for _, s in via_index], [s for _, s in exact], atol=1e-5)
    assert isinstance(loaded.cache["hnsw"], _FakeIndex)
