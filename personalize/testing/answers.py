"""What every answer of a strategy must look like, and the robustness property."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from personalize.dataset import Dataset
from personalize.strategies import Artifact, CannotRecommend, History, Scored, Strategy
from personalize.testing.data import UNKNOWN_ITEM, UNKNOWN_SUBJECT


def ask(strategy: Strategy, artifact: Artifact, history: History, k: int,
        exclude: Iterable[Any] = ()) -> Scored | None:
    """``strategy.recommend``, with ``CannotRecommend`` turned into ``None``."""
    try:
        return strategy.recommend(artifact, history, k, list(exclude))
    except CannotRecommend:
        return None


def assert_valid_answer(result: Scored | None, dataset: Dataset, history: History, k: int,
                        exclude: Sequence[Any] = ()) -> None:
    """The shape of every answer: best first, distinct, known, unseen, not excluded."""
    if result is None:
        return
    assert isinstance(result, list), f"recommend() returned {type(result).__name__}, not a list"
    assert len(result) <= max(k, 0), f"{len(result)} items for k={k}"
    assert all(len(pair) == 2 for pair in result), "each answer is an (item_id, score) pair"
    ids = [pair[0] for pair in result]
    scores = [pair[1] for pair in result]
    catalog = set(dataset.item_ids.tolist())
    assert len(set(ids)) == len(ids), "an item is recommended twice"
    assert set(ids) <= catalog, f"unknown items {set(ids) - catalog}"
    assert not set(ids) & set(history.item_ids), "a history item was recommended"
    assert not set(ids) & set(exclude), "an excluded item was recommended"
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores), "scores: finite floats"
    assert scores == sorted(scores, reverse=True), "not best first"


def assert_same_answers(first: Scored | None, second: Scored | None) -> None:
    """Two answers name the same items in the same order, with the same scores."""
    assert (first is None) == (second is None), f"{first!r} against {second!r}"
    if first is not None and second is not None:
        assert [item for item, _ in first] == [item for item, _ in second]
        assert np.allclose([s for _, s in first], [s for _, s in second], rtol=1e-5)


def _strange_histories(dataset: Dataset) -> list[History]:
    """Every subject's own history, then the histories serving meets that training never saw."""
    catalog = dataset.item_ids.tolist()
    first = catalog[0] if catalog else UNKNOWN_ITEM
    return [
        *(History.from_dataset(dataset, subject) for subject in dataset.subject_ids.tolist()),
        History(),
        History(subject_id=UNKNOWN_SUBJECT),
        History(item_ids=[UNKNOWN_ITEM, UNKNOWN_ITEM], subject_id=UNKNOWN_SUBJECT),
        History(item_ids=[first], subject_id=UNKNOWN_SUBJECT),
        History(item_ids=[first, UNKNOWN_ITEM], weights=[2.0, 1.0], timestamps=[1.0, 2.0],
                ratings={first: 1.0}, subject_id=UNKNOWN_SUBJECT),
        History(item_ids=catalog, subject_id=_first_subject(dataset)),
        # serving's weights: a dislike is negative, an impression zero, both decayed
        History(item_ids=[first, catalog[-1] if catalog else UNKNOWN_ITEM, first],
                weights=[-4.0, 0.0, 0.5], recency=[1.0, 1.0, 0.5],
                subject_id=UNKNOWN_SUBJECT),
        History(item_ids=[first], weights=[-4.0], subject_id=UNKNOWN_SUBJECT),
    ]


def _first_subject(dataset: Dataset) -> Any:
    # a snapshot of impressions alone keeps no subject
    return dataset.subject_ids[0].item() if dataset.n_subjects else UNKNOWN_SUBJECT


def _assert_finite_or_nan(values: Any, length: int, what: str) -> None:
    if values is None:
        return
    array = np.asarray(values, dtype=np.float64)
    assert array.shape == (length,), f"{what}: shape {array.shape}, expected ({length},)"
    assert not np.any(np.isinf(array)), f"{what}: an infinite score"


def assert_robust(strategy: Strategy, dataset: Dataset, k: int) -> None:
    """Fit ``strategy`` on ``dataset`` and ask every hook awkward questions.

    ``fit`` succeeds or raises ``CannotRecommend``; then, for known, unknown,
    empty and catalog-wide histories, with nothing, half the catalog or all of
    it excluded, ``recommend``, ``recommend_many``, ``item_scores_many``,
    ``score_items``, ``similar``, ``explain``, ``predict``, ``fold_in`` and
    ``item_vectors`` give answers of the contract's shape or raise
    ``CannotRecommend``. Any other exception fails the check.
    """
    try:
        artifact = strategy.fit(dataset)
    except CannotRecommend:
        return
    catalog = dataset.item_ids.tolist()
    histories = _strange_histories(dataset)
    for exclude in ([], catalog[: len(catalog) // 2], [*catalog, UNKNOWN_ITEM]):
        many = strategy.recommend_many(artifact, histories, k, exclude)
        assert len(many) == len(histories), "recommend_many: one answer per history"
        for history, answer in zip(histories, many, strict=True):
            assert_valid_answer(answer, dataset, history, k, exclude)
            assert_valid_answer(ask(strategy, artifact, history, k, exclude), dataset, history,
                                k, exclude)
        if len(exclude) > len(catalog):
            assert all(not answer for answer in many), "recommended an excluded item"
    if hasattr(strategy, "item_scores_many"):  # the vectorised strategies' batch scorer
        scores, answered = strategy.item_scores_many(artifact, histories)
        assert np.shape(answered) == (len(histories),)
        assert not np.any(np.isnan(scores[answered])), "item_scores_many: a NaN score"
    probe = [*catalog[:3], UNKNOWN_ITEM]
    for history in histories:
        with contextlib.suppress(CannotRecommend):
            _assert_finite_or_nan(strategy.score_items(artifact, history, probe), len(probe),
                                  "score_items")
        reasons = strategy.explain_many(artifact, history, probe)
        assert len(reasons) == len(probe), "explain_many: one reason per item"
        assert all(reason is None or reason in history.item_ids for reason in reasons), (
            "explain named an item outside the history")
        folded = strategy.fold_in(artifact, history)
        assert folded is None or (np.ndim(folded) == 1 and np.all(np.isfinite(folded)))
    for item in probe:
        try:
            result = strategy.similar(artifact, item, k, exclude=catalog[-1:])
        except CannotRecommend:
            continue
        assert_valid_answer(result, dataset, History(item_ids=[item]), k, catalog[-1:])
    for subject in (_first_subject(dataset), UNKNOWN_SUBJECT):
        predicted = strategy.predict(artifact, subject, probe, histories[-2])
        if predicted is not None:
            assert np.all(np.isfinite(predicted)), "predict: a non-finite rating"
    vectors = strategy.item_vectors(artifact, probe)
    assert vectors is None or (np.ndim(vectors) == 2 and len(vectors) == len(probe))
