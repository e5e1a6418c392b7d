"""The base class's defaults: ``recommend_many`` as a loop, the optional hooks, ``top_k_rows``."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.strategies.artifacts import Artifact, ArtifactFormatError
from personalize.strategies.base import CannotRecommend, Strategy
from personalize.strategies.history import History
from personalize.strategies.ranking import top_k, top_k_rows


class Echo(Strategy):
    """Recommends the history's own items reversed; cannot answer an empty one."""

    def fit(self, dataset):
        return Artifact()

    def recommend(self, artifact, history, k, exclude=()):
        if history.subject_id == "broken":
            raise RuntimeError("a bug")
        if not history.item_ids:
            raise CannotRecommend("nothing to echo")
        excluded = set(exclude)
        kept = [i for i in reversed(history.item_ids) if i not in excluded]
        return [(item, 1.0) for item in kept[:k]]


def test_recommend_many_loops_over_recommend():
    histories = [History(item_ids=[1, 2, 3]), History(), History(item_ids=[4])]
    lists = Echo().recommend_many(Artifact(), histories, 2, exclude=iter([2]))
    # the exclude iterable is read once and applies to every history
    assert lists == [[(3, 1.0), (1, 1.0)], None, [(4, 1.0)]]


def test_recommend_many_lets_other_errors_through():
    with pytest.raises(RuntimeError):
        Echo().recommend_many(Artifact(), [History(item_ids=[1], subject_id="broken")], 5)


@pytest.mark.parametrize("k", [0, 1, 3, 7, 12, 15])
def test_top_k_rows_is_top_k_of_each_row(k):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 5, size=(40, 12)).astype(np.float64)  # many ties
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[5] = -np.inf  # nothing to recommend
    scores[6, :2] = [7.0, 7.0]  # a tie at the top
    rows = top_k_rows(scores, k)
    assert len(rows) == len(scores)
    for row, best in zip(scores, rows, strict=True):
        assert best.tolist() == top_k(row, k).tolist()


def test_top_k_rows_of_no_rows():
    assert top_k_rows(np.empty((0, 4)), 3) == []


def test_implements_tells_an_overridden_hook():
    assert Echo.implements("recommend")
    assert not Echo.implements("similar")
    assert not Echo().implements("score_items")


def test_the_optional_hooks_default_to_nothing():
    strategy, artifact, history = Echo(), Artifact(), History(item_ids=[1])
    with pytest.raises(CannotRecommend):
        strategy.similar(artifact, 1, 5)
    assert strategy.score_items(artifact, history, [1]) is None
    assert strategy.explain(artifact, history, 1) is None
    assert strategy.explain_many(artifact, history, [1, 2]) == [None, None]
    assert strategy.fold_in(artifact, history) is None
    assert strategy.predict(artifact, 7, [1]) is None
    assert strategy.item_vectors(artifact, [1]) is None
    assert strategy.upsert_items(artifact, []) is None
    assert strategy.check() == []
    assert strategy.max_items() is None


def test_refit_defaults_to_a_fit_from_scratch(monkeypatch):
    fitted = []
    monkeypatch.setattr(Echo, "fit", lambda self, dataset: fitted.append(dataset) or Artifact())
    previous = Artifact(meta={"version": 3})
    assert isinstance(Echo().refit("snapshot", previous), Artifact)
    assert fitted == ["snapshot"]
    assert not Echo.implements("refit")


def test_new_artifact_is_stamped_and_checked():
    artifact = Echo().new_artifact({"item_ids": np.arange(3)}, n_items=3)
    assert artifact.meta == {"strategy": "tests.strategies.test_base.Echo",
                             "artifact_version": 1, "options": {}, "n_items": 3}
    Echo().check_artifact(artifact)

    class Other(Echo):
        artifact_version = 2

    with pytest.raises(ArtifactFormatError, match=r"written by .tests\.strategies\.test_base\.Echo."):
        Other().check_artifact(artifact)
    artifact.meta["artifact_version"] = 7
    with pytest.raises(ArtifactFormatError, match="layout version 7"):
        Echo().check_artifact(Artifact(arrays={}, meta=dict(artifact.meta)))


def test_forget_subjects_zeroes_per_subject_rows_and_csr_slices():
    artifact = Artifact(arrays={
        "subject_ids": np.array([10, 11, 12]),
        "item_ids": np.array([1, 2, 3]),  # same length, but an item array: untouched
        "pu": np.ones((3, 2)),
        "item_factors": np.ones((3, 2)),
        "ur.indptr": np.array([0, 2, 3, 5]),
        "ur.items": np.array([0, 1, 2, 0, 1]),
        "ur.ratings": np.array([5.0, 4.0, 3.0, 2.0, 1.0]),
    }, meta={})
    artifact.index_of("subject_ids")

    assert Echo().forget_subjects(artifact, [10, 99]) == 1

    assert artifact["subject_ids"].tolist() == [-1, 11, 12]
    assert artifact["pu"].tolist() == [[0, 0], [1, 1], [1, 1]]
    assert artifact["item_factors"].sum() == 6
    assert artifact["item_ids"].tolist() == [1, 2, 3]
    assert artifact["ur.ratings"].tolist() == [0.0, 0.0, 3.0, 2.0, 1.0]
    assert 10 not in artifact.index_of("subject_ids")
    assert Echo().forget_subjects(artifact, [10]) == 0


def test_forget_subjects_handles_string_ids_and_artifacts_without_subjects():
    artifact = Artifact(arrays={"subject_ids": np.array(["a", "b"]), "subject_bias": np.ones(2)})
    assert Echo().forget_subjects(artifact, ["b"]) == 1
    assert artifact["subject_ids"].tolist() == ["a", ""]
    assert artifact["subject_bias"].tolist() == [1.0, 0.0]
    assert Echo().forget_subjects(Artifact(arrays={"item_ids": np.arange(3)}), [1]) == 0
