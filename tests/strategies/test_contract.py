"""Every built-in strategy and both hybrids pass the shipped contract test.

The plugins run the same :class:`personalize.testing.StrategyContractTests`
from their own suites. The last tests show that the contract's own checks fail
a strategy that breaks it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pytest
from django.test import override_settings

from personalize.dataset import Dataset
from personalize.strategies import Artifact, CannotRecommend, History, Scored, Strategy
from personalize.strategies.ease import EASE
from personalize.strategies.gated import Gated
from personalize.strategies.hybrid import Blend, Cascade
from personalize.strategies.item_knn import ItemKNN
from personalize.strategies.popularity import Popularity, Trending
from personalize.strategies.transitions import Transitions
from personalize.testing import StrategyContractTests, assert_valid_answer, synthetic_shop

PARTS = {
    "popular": "personalize.strategies.popularity.Popularity",
    "item_knn": "personalize.strategies.item_knn.ItemKNN",
    "ease": "personalize.strategies.ease.EASE",
}


class TestPopularity(StrategyContractTests):
    strategy_class = Popularity


class TestTrending(StrategyContractTests):
    strategy_class = Trending


class TestItemKNN(StrategyContractTests):
    strategy_class = ItemKNN


class TestEASE(StrategyContractTests):
    strategy_class = EASE


class TestEASEWithRecency(StrategyContractTests):
    strategy_class = EASE
    options = {"recency_half_life": 5, "recency_half_life_days": 30}


class TestTransitions(StrategyContractTests):
    strategy_class = Transitions


class TestTransitionsByTime(StrategyContractTests):
    strategy_class = Transitions
    options = {"window": 2, "backward": 0.0, "history_half_life_days": 1.0,
               "time_half_life_days": 7.0, "binary": True}


class HybridContract(StrategyContractTests):
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def parts_configured(cls) -> Iterator[None]:
        with override_settings(PERSONALIZE={"STRATEGIES": PARTS}):
            yield


class TestBlend(HybridContract):
    strategy_class = Blend
    options = {"strategies": {"ease": 0.7, "popular": 0.3}, "candidates": 30}


class TestBlendOfEveryCorePart(HybridContract):
    strategy_class = Blend
    options = {"strategies": {"ease": 0.5, "item_knn": 0.3, "popular": 0.2}, "candidates": 20}


class TestGated(HybridContract):
    strategy_class = Gated
    options = {"strategies": {"ease": [0, 0.2, 0.5, 0.7, 0.8], "item_knn": [0, 0.8, 0.5, 0.3, 0.2],
                              "popular": [1, 0, 0, 0, 0.1]},
               "content": "item_knn", "new_item_days": 30.0, "candidates": 20}


class TestGatedOnePart(HybridContract):
    strategy_class = Gated
    options = {"strategies": {"ease": [1, 1, 1]}, "buckets": [2, 5]}


class TestCascade(HybridContract):
    strategy_class = Cascade
    options = {"candidates": "item_knn", "ranker": "ease", "pool": 20}


# --- the contract's own checks can fail ------------------------------------------------


@pytest.mark.parametrize(("result", "message"), [
    ([(101, 1.0), (101, 0.5)], "twice"),
    ([(101, 1.0), (-5, 0.5)], "unknown items"),
    ([(102, 1.0)], "history item"),
    ([(103, 1.0)], "excluded item"),
    ([(104, 0.5), (105, 1.0)], "best first"),
])
def test_a_broken_answer_fails(result, message):
    with pytest.raises(AssertionError, match=message):
        assert_valid_answer(result, synthetic_shop(seed=3), History(item_ids=[102]), 5,
                            exclude=[103])


class Affinity(Strategy):
    """Keeps one learned score per subject and item under a name of its own: ``affinity``."""

    def fit(self, dataset: Dataset) -> Artifact:
        dense = dataset.interactions.toarray().astype(np.float64)
        return self.new_artifact({"subject_ids": dataset.subject_ids,
                                  "item_ids": dataset.item_ids, "affinity": dense})

    def recommend(self, artifact: Artifact, history: History, k: int,
                  exclude: Iterable[Any] = ()) -> Scored:
        row = np.flatnonzero(artifact["subject_ids"] == history.subject_id)
        if row.size == 0:
            raise CannotRecommend("unknown subject")
        scores = artifact["affinity"][row[0]].copy()
        seen = np.isin(artifact["item_ids"], [*history.item_ids, *exclude])
        scores[seen] = -np.inf
        best = [int(i) for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
        return [(artifact["item_ids"][i].item(), float(scores[i])) for i in best]


def _erasure_check(cls: type[Strategy]) -> None:
    contract = StrategyContractTests()
    dataset = synthetic_shop(seed=3)
    strategy = cls()
    contract.test_an_erased_subject_is_a_stranger((strategy, strategy.fit(dataset)), dataset)


def test_the_erasure_check_holds_for_conventional_arrays():
    # the base forget_subjects takes the subject out of subject_ids: a stranger now
    _erasure_check(Affinity)


class OwnIndex(Affinity):
    """Finds its subjects through an index the base forget_subjects does not know."""

    def fit(self, dataset: Dataset) -> Artifact:
        artifact = super().fit(dataset)
        artifact.arrays["members"] = artifact.arrays.pop("subject_ids")
        return artifact

    def recommend(self, artifact: Artifact, history: History, k: int,
                  exclude: Iterable[Any] = ()) -> Scored:
        renamed = Artifact(arrays={**artifact.arrays, "subject_ids": artifact["members"]},
                           meta=artifact.meta)
        return super().recommend(renamed, history, k, exclude)


def test_the_erasure_check_fails_a_strategy_that_still_knows_the_subject():
    with pytest.raises(AssertionError):
        _erasure_check(OwnIndex)


def test_a_strategy_that_forgets_in_its_own_way_passes():
    class ForgetfulOwnIndex(OwnIndex):
        def forget_subjects(self, artifact: Artifact, subject_ids: Iterable[Any]) -> int:
            gone = np.isin(artifact["members"], list(subject_ids))
            members = artifact["members"].copy()
            members[gone] = -1
            artifact.arrays["members"] = members
            return int(gone.sum())

    _erasure_check(ForgetfulOwnIndex)
