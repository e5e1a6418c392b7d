"""explain_many: every item of a block explained in one call, as explain does one by one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.test import override_settings

from personalize.conf import DEFAULTS
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import Strategy
from personalize.strategies.ease import EASE
from personalize.strategies.history import History
from personalize.strategies.hybrid import Blend, Cascade
from personalize.strategies.item_knn import ItemKNN
from personalize.strategies.popularity import Popularity
from personalize.strategies.transitions import Transitions
from personalize.testing import synthetic_shop as make_dataset

pytestmark = pytest.mark.django_db

UNKNOWN_ITEM = -999


def _strategies() -> dict[str, Strategy]:
    return {
        "ease": EASE(),
        "ease_sparse": EASE(top_entries=5),
        "ease_weighted": EASE(binary=False),
        "item_knn": ItemKNN(neighbours=10),
        "item_knn_binary": ItemKNN(binary=True),
        "item_knn_recency": ItemKNN(recency_half_life=3),
        "ease_recency": EASE(recency_half_life=3, recency_half_life_days=10),
        "transitions": Transitions(),
        "blend": Blend(strategies={"ease": 0.6, "item_knn": 0.4}),
        "cascade": Cascade(candidates="item_knn", ranker="ease", pool=20),
        "popular": Popularity(),
    }


@pytest.fixture(scope="module")
def dataset():
    return make_dataset(seed=5)


@pytest.fixture(scope="module", params=list(_strategies()))
def fitted(request, dataset) -> tuple[Strategy, Artifact]:
    strategy = _strategies()[request.param]
    with override_settings(PERSONALIZE={"STRATEGIES": DEFAULTS["STRATEGIES"]}):
        return strategy, strategy.fit(dataset)


def _histories(dataset) -> list[History]:
    ids = dataset.item_ids.tolist()
    return [
        History(item_ids=ids[:6], weights=[1.0, 2.0, 8.0, 1.0, -4.0, 2.0]),
        # repeated items add up; an unknown one is ignored
        History(item_ids=[ids[3], ids[3], UNKNOWN_ITEM, ids[20]], weights=[1.0, 3.0, 1.0, 2.0]),
        History(item_ids=[ids[7]]),
        History(item_ids=[UNKNOWN_ITEM]),
        History(),
    ]


def _asked(dataset) -> list[Any]:
    ids = dataset.item_ids.tolist()
    # every catalog item, an unknown one, and a repeated one, in no particular order
    return [*ids[::-1], UNKNOWN_ITEM, ids[10]]


def test_explain_many_gives_what_explain_gives_item_by_item(fitted, dataset):
    strategy, artifact = fitted
    asked = _asked(dataset)
    named = 0
    for history in _histories(dataset):
        one_by_one = [strategy.explain(artifact, history, item) for item in asked]
        assert strategy.explain_many(artifact, history, asked) == one_by_one
        named += sum(reason is not None for reason in one_by_one)
    if not isinstance(strategy, Popularity):
        assert named > 0  # the comparison covered real answers, not only None


def test_answers_are_plain_python_ids_of_the_history(fitted, dataset):
    strategy, artifact = fitted
    history = _histories(dataset)[0]
    for reason in strategy.explain_many(artifact, history, _asked(dataset)):
        assert reason is None or (type(reason) is int and reason in history.item_ids)


def test_no_items_and_no_history(fitted, dataset):
    strategy, artifact = fitted
    assert strategy.explain_many(artifact, _histories(dataset)[0], []) == []
    assert strategy.explain_many(artifact, History(), dataset.item_ids[:3].tolist()) == [None] * 3


class _Oldest(EASE):
    """A subclass with its own explain: the batched path must not bypass it."""

    def explain(self, artifact: Artifact, history: History, item_id: Any) -> Any:
        return history.item_ids[0] if len(history) else None


class _Latest(ItemKNN):
    def explain(self, artifact: Artifact, history: History, item_id: Any) -> Any:
        return history.item_ids[-1] if len(history) else None


@pytest.mark.parametrize("cls", [_Oldest, _Latest])
def test_a_subclass_with_its_own_explain_is_asked_item_by_item(cls, dataset):
    strategy = cls()
    artifact = strategy.fit(dataset)
    history = _histories(dataset)[0]
    expected = history.item_ids[0] if cls is _Oldest else history.item_ids[-1]
    assert strategy.explain_many(artifact, history, [1, 2, 3]) == [expected] * 3


def test_the_default_loops_over_explain():
    class Counting(Popularity):
        asked: list[Any] = []

        def explain(self, artifact: Artifact, history: History, item_id: Any) -> Any:
            self.asked.append(item_id)
            return item_id * 10

    strategy = Counting()
    assert strategy.explain_many(Artifact(arrays={}, meta={}), History(), [3, 1, 2]) == [30, 10, 20]
    assert strategy.asked == [3, 1, 2]


def test_ease_dense_and_sparse_agree_where_the_weights_are_kept(dataset):
    dense, sparse = EASE(), EASE(top_entries=len(dataset.item_ids))
    a, b = dense.fit(dataset), sparse.fit(dataset)
    history, asked = _histories(dataset)[0], _asked(dataset)
    assert dense.explain_many(a, history, asked) == sparse.explain_many(b, history, asked)
    assert np.array_equal(a["item_ids"], b["item_ids"])
