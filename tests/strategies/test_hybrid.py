"""Blend and Cascade: normalised blending, re-ranking, artifact layout, check E021."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pytest
from django.core.checks import Error
from django.test import override_settings

from personalize.dataset import Dataset
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend, Options, Strategy
from personalize.strategies.common import VectorStrategy
from personalize.strategies.history import History
from personalize.strategies.hybrid import Blend, Cascade, _minmax
from personalize.strategies.ranking import top_k

HERE = __name__


@dataclass(frozen=True)
class FixedOptions(Options):
    scores: dict[str, float] = field(default_factory=dict)
    refuse_empty: bool = False


class Fixed(VectorStrategy):
    """Fixed item scores (keys are item ids as strings); scores any item list."""

    options_class = FixedOptions

    def fit(self, dataset):
        ids = np.array(sorted(int(k) for k in self.options.scores))
        values = np.array([self.options.scores[str(i)] for i in ids], dtype=np.float32)
        return self.new_artifact({"item_ids": ids, "scores": values})

    def item_scores(self, artifact, history):
        if self.options.refuse_empty and not len(history):
            raise CannotRecommend("empty")
        return artifact["scores"].astype(np.float64)


class FixedListOnly(Strategy):
    """The same, but only through recommend(): no score_items."""

    options_class = FixedOptions

    def fit(self, dataset):
        arrays = Fixed(**self.options.as_dict()).fit(dataset).arrays
        return self.new_artifact(arrays)

    def recommend(self, artifact, history, k, exclude: Iterable = ()):
        if self.options.refuse_empty and not len(history):
            raise CannotRecommend("empty")
        scores = artifact["scores"].astype(np.float64)
        hidden = np.isin(artifact["item_ids"], [*history.item_ids, *exclude])
        scores[hidden] = -np.inf
        best = top_k(scores, k)
        return list(zip(artifact["item_ids"][best].tolist(), scores[best].tolist(), strict=True))


@dataclass(frozen=True)
class DrawnOptions(Options):
    seed: int = 0
    first: int = 0
    n: int = 50


class Drawn(VectorStrategy):
    """Items ``first .. first + n - 1`` with drawn scores: many ties, some -inf."""

    options_class = DrawnOptions

    def fit(self, dataset):
        rng = np.random.default_rng(self.options.seed)
        scores = rng.integers(0, 6, self.options.n).astype(np.float64)
        scores[rng.random(self.options.n) < 0.1] = -np.inf
        ids = np.arange(self.options.first, self.options.first + self.options.n)
        return self.new_artifact({"item_ids": ids, "scores": scores})

    def item_scores(self, artifact, history):
        # depends on the history, as real parts do
        return artifact["scores"] + (np.asarray(artifact["item_ids"]) % (len(history) + 2) == 0)


A = {"1": 4.0, "2": 3.0, "3": 2.0, "4": 0.0}
B = {"1": 0.0, "2": 1.0, "3": 5.0, "4": 10.0}
PARTS = {
    "a": (f"{HERE}.Fixed", {"scores": A}),
    "b": (f"{HERE}.Fixed", {"scores": B}),
    "a_list": (f"{HERE}.FixedListOnly", {"scores": A}),
    "b_list": (f"{HERE}.FixedListOnly", {"scores": B}),
    "b_picky": (f"{HERE}.Fixed", {"scores": B, "refuse_empty": True}),
    "none": (f"{HERE}.Fixed", {"scores": A, "refuse_empty": True}),
}
#: Overlapping item ranges with drawn scores (see Drawn).
DRAWN = {
    "low": (f"{HERE}.Drawn", {"seed": 1, "first": 0, "n": 50}),
    "high": (f"{HERE}.Drawn", {"seed": 2, "first": 30, "n": 60}),
    "same": (f"{HERE}.Drawn", {"seed": 3, "first": 0, "n": 50}),
}
DATASET = Dataset.from_arrays([1], [1], "view")


def strategies(**extra):
    from django.conf import settings

    return override_settings(PERSONALIZE={
        **settings.PERSONALIZE, "STRATEGIES": {**PARTS, **extra}, "LOAD_ENTRY_POINTS": False,
        "DEFAULT_STRATEGY": "a", "FALLBACK_STRATEGY": "a",
    })


def ids(result):
    return [item for item, _ in result]


def serve(strategy, history=None, k=10, exclude=()):
    with strategies():
        artifact = strategy.fit(DATASET)
    return strategy.recommend(artifact, history or History(), k, exclude)


def test_blend_sums_weighted_min_max_scores():
    result = serve(Blend(strategies={"a": 2.0, "b": 1.0}))
    # a: 1, .75, .5, 0   b: 0, .1, .5, 1   -> 2a + b = 2, 1.6, 1.5, 1
    assert ids(result) == [1, 2, 3, 4]
    assert np.allclose([s for _, s in result], [2.0, 1.6, 1.5, 1.0])
    assert ids(serve(Blend(strategies={"a": 1.0, "b": 2.0}))) == [4, 3, 1, 2]


def test_blend_scores_every_candidate_through_score_items():
    # each part proposes 2 items; score_items fills in the other part's candidates
    result = serve(Blend(strategies={"a": 2.0, "b": 1.0}, candidates=2), k=2)
    assert ids(result) == [1, 2]  # 2 is scored by b too (0.1), so it beats b's 4


def test_blend_of_list_only_parts_counts_missing_items_as_zero():
    result = serve(Blend(strategies={"a_list": 2.0, "b_list": 1.0}, candidates=2), k=2)
    # a lists 1 (1.0), 2 (0.0); b lists 4 (1.0), 3 (0.0)
    assert ids(result) == [1, 4]
    assert np.allclose([s for _, s in result], [2.0, 1.0])


def test_blend_skips_parts_that_cannot_answer():
    assert ids(serve(Blend(strategies={"a": 1.0, "b_picky": 5.0}))) == [1, 2, 3, 4]
    with pytest.raises(CannotRecommend):
        serve(Blend(strategies={"none": 1.0}))


def test_blend_never_returns_history_or_excluded_items():
    result = serve(Blend(strategies={"a": 1.0, "b": 1.0}), History(item_ids=[1]), exclude=[4])
    assert set(ids(result)) == {2, 3}


def test_cascade_reranks_the_candidates():
    result = serve(Cascade(candidates="a", ranker="b", pool=3), k=3)
    assert ids(result) == [3, 2, 1]  # 4 was not a candidate
    assert ids(serve(Cascade(candidates="a", ranker="b_list", pool=3), k=3)) == [3, 2, 1]
    # the pool grows to k
    assert ids(serve(Cascade(candidates="a", ranker="b", pool=3), k=4)) == [4, 3, 2, 1]


def test_cascade_keeps_the_candidate_order_when_the_ranker_cannot_answer():
    assert ids(serve(Cascade(candidates="a", ranker="b_picky", pool=3), k=3)) == [1, 2, 3]
    with pytest.raises(CannotRecommend):
        serve(Cascade(candidates="none", ranker="b", pool=3))


def test_artifact_holds_the_parts_prefixed_and_is_self_contained():
    strategy = Blend(strategies={"a": 1.0, "b": 2.0})
    with strategies():
        artifact = strategy.fit(DATASET)
    assert set(artifact.arrays) == {"a/item_ids", "a/scores", "b/item_ids", "b/scores"}
    assert artifact.meta["layout"] == "prefixed"
    assert artifact.meta["parts"]["b"]["strategy"] == f"{HERE}.Fixed"
    assert artifact.meta["parts"]["b"]["options"]["scores"] == B
    loaded = Artifact.from_bytes(artifact.to_bytes())
    # served with the classes and options it was trained with, whatever the settings say now
    with override_settings(PERSONALIZE={"STRATEGIES": {}, "LOAD_ENTRY_POINTS": False}):
        assert ids(strategy.recommend(loaded, History(), 2)) == [4, 3]


def test_a_hybrid_that_contains_itself_refuses_to_fit():
    loop = Blend(strategies={"loop": 1.0})
    with strategies(loop=("personalize.strategies.hybrid.Blend", {"strategies": {"loop": 1.0}})), \
            pytest.raises(ValueError, match="contains itself"):
        loop.fit(DATASET)


@pytest.mark.parametrize(("cls", "options", "message"), [
    (Blend, {}, "strategies must name at least one strategy"),
    (Blend, {"strategies": {"a": -1}}, r"strategies\['a'\] must be a weight >= 0"),
    (Blend, {"strategies": {"a": 0}}, "at least one positive weight"),
    (Blend, {"strategies": {"a": 1}, "candidates": 0}, "candidates must be a positive integer"),
    (Cascade, {"ranker": "b"}, "candidates must name a configured strategy"),
    (Cascade, {"candidates": "a"}, "ranker must name a configured strategy"),
    (Cascade, {"candidates": "a", "ranker": "a"}, "must be different strategies"),
    (Cascade, {"candidates": "a", "ranker": "b", "pool": 0}, "pool must be a positive integer"),
])
def test_options_are_validated(cls, options, message):
    with pytest.raises(ValueError, match=message):
        cls(**options)


# --- personalize.E021 ----------------------------------------------------------------


def test_e021_unknown_part():
    with strategies():
        assert Cascade(candidates="a", ranker="ghost").check() == [Error(
            "Cascade names 'ghost', which is not a configured strategy.",
            hint="Use one of: a, a_list, b, b_list, b_picky, none.",
            obj="PERSONALIZE['STRATEGIES']", id="personalize.E021",
        )]


def test_e021_hybrid_contains_itself():
    outer = ("personalize.strategies.hybrid.Blend", {"strategies": {"inner": 1.0}})
    inner = ("personalize.strategies.hybrid.Cascade", {"candidates": "a", "ranker": "outer"})
    with strategies(outer=outer, inner=inner):
        assert Blend(strategies={"inner": 1.0}).check() == [Error(
            "Blend {'strategies': {'inner': 1.0}, 'candidates': 100} contains itself "
            "through its parts.",
            hint="A hybrid may not name itself, directly or through another hybrid.",
            obj="PERSONALIZE['STRATEGIES']", id="personalize.E021",
        )]
        assert Blend(strategies={"a": 1.0, "b": 1.0}).check() == []


def test_e021_runs_with_the_system_checks():
    from personalize.checks import check_strategies

    with strategies(bad=("personalize.strategies.hybrid.Blend", {"strategies": {"zz": 1.0}})):
        assert "personalize.E021" in [m.id for m in check_strategies()]


class Explaining(Fixed):
    """Fixed scores whose explanation is the first history item when asked about item 3."""

    def explain(self, artifact, history, item_id):
        return history.item_ids[0] if item_id == 3 and len(history) else None


def test_hybrid_explains_with_the_first_part_that_can():
    PARTS["explaining"] = (f"{HERE}.Explaining", {"scores": B})
    try:
        blend = Blend(strategies={"a": 1.0, "explaining": 1.0})
        with strategies():
            artifact = blend.fit(DATASET)
        history = History(item_ids=[1])
        assert blend.explain(artifact, history, 3) == 1
        assert blend.explain(artifact, history, 2) is None
    finally:
        del PARTS["explaining"]


@pytest.mark.parametrize(("scores", "expected"), [
    ([2.0, np.nan, 4.0, 3.0, -np.inf], [0.0, 0.0, 1.0, 0.5, 0.0]),
    ([5.0, 5.0, np.nan], [1.0, 1.0, 0.0]),  # all equal: all best
    ([np.nan, -np.inf], [0.0, 0.0]),
    ([], []),
])
def test_minmax_scales_the_finite_scores(scores, expected):
    scaled = _minmax(np.asarray(scores, dtype=np.float64))
    assert scaled.dtype == np.float64
    np.testing.assert_array_equal(scaled, expected)
