"""Recency-weighted fold-in: the factors, and EASE / item kNN scoring with them."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.strategies.common import history_vector
from personalize.strategies.ease import EASE
from personalize.strategies.history import History
from personalize.strategies.item_knn import ItemKNN
from personalize.strategies.recency import recency_factors, with_recency

DAY = 86_400.0


def test_factors_halve_per_half_life_of_positions():
    history = History(item_ids=[1, 2, 3, 4])
    assert recency_factors(history, half_life=1).tolist() == [0.125, 0.25, 0.5, 1.0]
    assert recency_factors(history, half_life=2).tolist() == pytest.approx(
        [2 ** -1.5, 0.5, 2 ** -0.5, 1.0])


def test_factors_halve_per_half_life_of_days_before_the_latest():
    history = History(item_ids=[1, 2, 3], timestamps=[0.0, 2 * DAY, 3 * DAY])
    assert recency_factors(history, half_life_days=1).tolist() == [0.125, 0.5, 1.0]
    # both: the exponents add up
    assert recency_factors(history, half_life=1, half_life_days=1).tolist() == [
        0.125 * 0.25, 0.5 * 0.5, 1.0]
    # a history without timestamps is not decayed by time
    assert recency_factors(History(item_ids=[1, 2]), half_life_days=1).tolist() == [1.0, 1.0]


def test_off_leaves_the_history_as_it_is():
    history = History(item_ids=[1, 2], weights=[2.0, 3.0])
    assert with_recency(history) is history


def test_weights_and_recency_are_both_scaled():
    history = History(item_ids=[1, 2], weights=[2.0, 3.0], recency=[0.5, 1.0])
    decayed = with_recency(history, half_life=1)
    assert decayed.weights == [1.0, 3.0]
    assert decayed.recency == [0.25, 1.0]


def test_ease_folds_in_the_latest_items_most(shop):
    strategy = EASE(recency_half_life=1)
    artifact = strategy.fit(shop)
    ids = artifact["item_ids"][[3, 10, 7]].tolist()
    history = History(item_ids=ids)
    weights = artifact["weights"]
    # binary EASE: each item counts as its recency, 1/4, 1/2, 1 in history order
    expected = (0.25 * weights[3].astype(np.float64) + 0.5 * weights[10]
                + 1.0 * weights[7])
    assert np.allclose(strategy.item_scores(artifact, history), expected, rtol=1e-5, atol=1e-7)
    # without the option every item weighs 1, as before
    plain = EASE().item_scores(artifact, history)
    assert np.allclose(plain, weights[[3, 10, 7]].astype(np.float64).sum(axis=0),
                       rtol=1e-5, atol=1e-7)


def test_item_knn_weights_the_events_by_recency(shop):
    strategy = ItemKNN(recency_half_life_days=1)
    artifact = strategy.fit(shop)
    ids = artifact["item_ids"][[1, 2]].tolist()
    history = History(item_ids=ids, weights=[4.0, 1.0], timestamps=[0.0, DAY])
    # the older event is a day older: its weight 4 counts 2
    vector, _ = history_vector(artifact, with_recency(history, half_life_days=1),
                               len(artifact["item_ids"]))
    assert vector[[1, 2]].tolist() == [2.0, 1.0]
    decayed = strategy.item_scores(artifact, history)
    same = ItemKNN().item_scores(artifact, History(item_ids=ids, weights=[2.0, 1.0]))
    assert np.array_equal(decayed, same)


@pytest.mark.parametrize("strategy_class", [EASE, ItemKNN])
@pytest.mark.parametrize(("options", "message"), [
    ({"recency_half_life": 0}, "recency_half_life"),
    ({"recency_half_life": -1.0}, "recency_half_life"),
    ({"recency_half_life_days": "7"}, "recency_half_life_days"),
    ({"recency_half_life_days": float("nan")}, "recency_half_life_days"),
])
def test_bad_half_lives_are_named(strategy_class, options, message):
    with pytest.raises(ValueError, match=message):
        strategy_class(**options)
