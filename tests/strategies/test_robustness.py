"""No strategy raises on any data shape: the contract's robustness property, everywhere.

:class:`personalize.testing.StrategyContractTests` runs ``test_robust_on_any_data``
on every strategy (tests/strategies/test_contract.py, the plugins' contract
tests). Here: the checks of :func:`personalize.testing.assert_robust` can fail,
and every core strategy and the Blend of them come out of every evaluation
protocol measured, never ``"failed"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from django.test import override_settings

from personalize.dataset import Dataset
from personalize.evaluation.runner import evaluate
from personalize.strategies import Artifact, CannotRecommend, History, Scored
from personalize.strategies.ease import EASE
from personalize.strategies.hybrid import Blend
from personalize.strategies.item_knn import ItemKNN
from personalize.strategies.popularity import Popularity
from personalize.testing import assert_robust, sparse_shop, synthetic_shop

PARTS = {
    "popular": "personalize.strategies.popularity.Popularity",
    "item_knn": "personalize.strategies.item_knn.ItemKNN",
    "ease": "personalize.strategies.ease.EASE",
}


class CrashesOnStrangers(Popularity):
    """Raises a KeyError for a subject it never saw: what the property catches."""

    def recommend(self, artifact: Artifact, history: History, k: int,
                  exclude: Iterable[Any] = ()) -> Scored:
        if history.subject_id is not None and history.subject_id not in {1, 2}:
            raise KeyError(history.subject_id)
        return super().recommend(artifact, history, k, exclude)


class RecommendsTheExcluded(Popularity):
    def recommend(self, artifact: Artifact, history: History, k: int,
                  exclude: Iterable[Any] = ()) -> Scored:
        return super().recommend(artifact, History(), k)


class RefusesToTrain(Popularity):
    def fit(self, dataset: Dataset) -> Artifact:
        raise CannotRecommend("nothing to learn from")


def test_an_unexpected_error_fails_the_check():
    with pytest.raises(KeyError):
        assert_robust(CrashesOnStrangers(), synthetic_shop(seed=1, subjects=4, items=12), 3)


def test_an_excluded_item_fails_the_check():
    with pytest.raises(AssertionError):
        assert_robust(RecommendsTheExcluded(), synthetic_shop(seed=1, subjects=4, items=12), 3)


def test_a_strategy_that_cannot_train_passes():
    assert_robust(RefusesToTrain(), synthetic_shop(seed=1, subjects=4, items=12), 3)


@pytest.mark.parametrize("protocol", ["stratified", "temporal", "leave-last-n", "kfold"])
def test_no_strategy_fails_under_any_protocol(protocol):
    strategies = {"popular": Popularity(), "item_knn": ItemKNN(), "ease": EASE()}
    with override_settings(PERSONALIZE={"STRATEGIES": PARTS}):
        strategies["blend"] = Blend(strategies={"ease": 0.6, "item_knn": 0.2, "popular": 0.2})
        report = evaluate(strategies, sparse_shop(), protocol, k=5, folds=3)
    for result in report["results"]:
        assert "failed" not in result, (result["name"], result.get("failed"))
        assert "skipped" not in result, (result["name"], result.get("skipped"))
