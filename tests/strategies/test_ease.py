"""EASE: the closed form, the popularity exponent, the item ceiling and check E020."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.checks import Error
from django.test import override_settings

from personalize.dataset import Dataset
from personalize.models import Item
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend
from personalize.strategies.ease import EASE, TooManyItems
from personalize.strategies.history import History
from personalize.training.checks import catalog_size_errors


def personalize(**overrides):
    from django.conf import settings

    return override_settings(PERSONALIZE={**settings.PERSONALIZE, **overrides})


def reference_weights(dataset, l2):
    """EASE in float64, straight from the paper."""
    x = (np.asarray(dataset.interactions.toarray()) > 0).astype(np.float64)
    gram = x.T @ x + l2 * np.eye(x.shape[1])
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0)
    return b


def test_closed_form_matches_the_reference(shop):
    artifact = EASE(l2=50.0, popularity_exponent=0.0).fit(shop)
    assert artifact["weights"].dtype == np.float32
    assert np.allclose(artifact["weights"], reference_weights(shop, 50.0), atol=1e-5)


def test_popularity_exponent_scales_columns(shop):
    plain = EASE(l2=50.0, popularity_exponent=0.0).fit(shop)["weights"]
    scaled = EASE(l2=50.0, popularity_exponent=-0.5).fit(shop)["weights"]
    counts = np.diff(shop.interactions.tocsc().indptr)
    assert np.allclose(scaled, plain * counts[None, :] ** -0.5, atol=1e-6)


def test_scores_are_the_history_rows_summed(shop):
    strategy = EASE(l2=50.0, popularity_exponent=0.0)
    artifact = strategy.fit(shop)
    history = History.from_dataset(shop, shop.subject_ids[0].item())
    seen = set(history.item_ids)
    b = reference_weights(shop, 50.0)
    x = np.isin(shop.item_ids, list(seen)).astype(np.float64)
    expected = x @ b
    expected[x > 0] = -np.inf
    best = np.argsort(-expected, kind="stable")[:5]
    result = strategy.recommend(artifact, history, 5)
    assert [i for i, _ in result] == shop.item_ids[best].tolist()
    assert np.allclose([s for _, s in result], expected[best], atol=1e-4)


def test_items_without_interactions_are_not_modelled():
    ds = Dataset.from_arrays([1, 1, 2, 2], [1, 2, 2, 3], ["view", "view", "view", "dislike"],
                             timestamps=[1, 2, 3, 4])
    artifact = EASE().fit(ds)
    assert artifact["item_ids"].tolist() == [1, 2]  # 3 has only a dislike


def test_nothing_positive_to_learn_from_cannot_train():
    # dislikes and impressions only: no modelled item (an empty matrix LAPACK refused)
    ds = Dataset.from_arrays([1, 2], [1, 2], ["dislike", "dislike"], timestamps=[1, 2])
    with pytest.raises(CannotRecommend, match="no item has a positive interaction"):
        EASE().fit(ds)


def test_ceiling_from_settings_and_option(shop):
    with personalize(EASE_MAX_ITEMS=10), pytest.raises(TooManyItems, match="ceiling is 10"):
        EASE().fit(shop)
    with pytest.raises(TooManyItems, match="would model 40 items; the ceiling is 39"):
        EASE(max_items=39).fit(shop)
    assert EASE(max_items=40).fit(shop)["weights"].shape == (40, 40)


def test_top_entries_gives_a_sparse_artifact(shop):
    dense = EASE()
    sparse = EASE(top_entries=39)
    a, b = dense.fit(shop), sparse.fit(shop)
    assert "weights" not in b and "weights.data" in b
    history = History.from_dataset(shop, shop.subject_ids[5].item())
    one, two = dense.recommend(a, history, 5), sparse.recommend(b, history, 5)
    assert [i for i, _ in one] == [i for i, _ in two]
    assert np.allclose([s for _, s in one], [s for _, s in two], atol=1e-6)
    few = EASE(top_entries=3).fit(shop)
    assert few.get_csr("weights").nnz <= 3 * 40
    assert len(EASE(top_entries=3).recommend(few, history, 5)) == 5


def test_empty_history_cannot_be_answered(shop):
    strategy = EASE()
    artifact = strategy.fit(shop)
    with pytest.raises(CannotRecommend):
        strategy.recommend(artifact, History(), 5)


def test_similar_and_explain(shop):
    strategy = EASE(l2=50.0, popularity_exponent=0.0)
    artifact = strategy.fit(shop)
    item = shop.item_ids[0].item()
    similar = strategy.similar(artifact, item, 3)
    row = reference_weights(shop, 50.0)[0]
    assert [i for i, _ in similar] == shop.item_ids[np.argsort(-row)[:3]].tolist()
    target = similar[0][0]
    other = shop.item_ids[-1].item()
    assert strategy.explain(artifact, History(item_ids=[other, item]), target) == item


def test_artifact_of_another_layout_is_refused(shop):
    strategy = EASE()
    artifact = strategy.fit(shop)
    stale = Artifact(arrays=artifact.arrays, meta={**artifact.meta, "artifact_version": 0})
    with pytest.raises(ValueError, match="layout version 0"):
        strategy.recommend(stale, History.from_dataset(shop, shop.subject_ids[0].item()), 5)


@pytest.mark.parametrize(("options", "message"), [
    ({"l2": 0}, "l2 must be positive"),
    ({"popularity_exponent": 3}, "popularity_exponent must be between -2 and 2"),
    ({"max_items": 0}, "max_items must be a positive integer or None"),
    ({"top_entries": 0}, "top_entries must be a positive integer or None"),
])
def test_options_are_validated(options, message):
    with pytest.raises(ValueError, match=message):
        EASE(**options)


# --- personalize.E020 ----------------------------------------------------------------


@pytest.mark.django_db
def test_e020_invalid_ceiling():
    with personalize(EASE_MAX_ITEMS="lots"):
        assert EASE().check() == [Error(
            "The EASE item ceiling is 'lots'; it must be a positive integer.",
            hint="Set PERSONALIZE['EASE_MAX_ITEMS'] (or the max_items option) to the "
                 "largest catalog EASE may invert, e.g. 20000.",
            obj="PERSONALIZE['EASE_MAX_ITEMS']", id="personalize.E020",
        )]


@pytest.mark.django_db
def test_e020_catalog_above_the_ceiling():
    for n in range(3):
        Item.objects.create(external_id=f"i{n}")
    Item.objects.create(external_id="gone", available=False)
    with personalize(EASE_MAX_ITEMS=2):
        assert catalog_size_errors({"ease": EASE()}) == [Error(
            "The catalog has 3 available items, more than strategy 'ease' can train on (2); "
            "its training will fail once more of them have interactions.",
            hint="Raise the strategy's item ceiling if the training workers have the memory "
                 "(EASE: PERSONALIZE['EASE_MAX_ITEMS'] or its max_items option; the Surprise "
                 "KNNBaseline and SlopeOne: their max_matrix_rows option), or use "
                 "item_knn for this catalog.",
            obj="PERSONALIZE['STRATEGIES']['ease']", id="personalize.E020",
        )]
    with personalize(EASE_MAX_ITEMS=3):
        assert catalog_size_errors({"ease": EASE()}) == []
    assert catalog_size_errors({"ease": EASE(max_items=5)}) == []
    # an invalid ceiling is the strategy's own check to report
    with personalize(EASE_MAX_ITEMS="lots"):
        assert catalog_size_errors({"ease": EASE()}) == []


@pytest.mark.django_db
def test_e020_runs_with_the_system_checks():
    from personalize.checks import check_strategies

    with personalize(EASE_MAX_ITEMS=-1):
        assert "personalize.E020" in [m.id for m in check_strategies()]


def test_e020_without_database_access_is_quiet():
    # outside a django_db test the database is off limits: the catalog part is skipped
    assert catalog_size_errors({"ease": EASE(max_items=1)}) == []
