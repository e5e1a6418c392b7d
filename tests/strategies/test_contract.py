"""The contract every strategy must honour, built-in or plugin.

Every strategy configured in settings or published through the
``personalize.strategies`` entry-point group (plus the two hybrids, configured
here) is fitted once on a small synthetic shop and put through the same
checks: unknown subject, unknown item, empty history, a subject who has seen
everything, k larger than the catalog, excluded and history items never
returned, determinism, and round trips through bytes and Django storage.

A strategy answers a request with a list of at most ``k`` ``(item_id, score)``
pairs, best first, of distinct catalog items outside the history and the
exclusions, or raises ``CannotRecommend``. Nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from django.test import override_settings

from personalize.conf import DEFAULTS
from personalize.strategies.base import CannotRecommend, History, Strategy
from personalize.strategies.registry import StrategySpec, configured_strategy_specs
from personalize.training.artifacts import (
    Artifact,
    delete_artifact,
    load_artifact,
    save_artifact,
)
from tests.strategies.conftest import make_dataset

pytestmark = pytest.mark.django_db

HYBRIDS = {
    "contract_blend": ("personalize.strategies.hybrid.Blend",
                       {"strategies": {"ease": 0.7, "popular": 0.3}, "candidates": 30}),
    "contract_cascade": ("personalize.strategies.hybrid.Cascade",
                         {"candidates": "item_knn", "ranker": "ease", "pool": 20}),
}
STRATEGIES = {**DEFAULTS["STRATEGIES"], **HYBRIDS}
SETTINGS = {"STRATEGIES": STRATEGIES, "LOAD_ENTRY_POINTS": True}
NEEDS = {"interactions", "ratings", "texts", "categories", "timestamps"}
#: Option names that seed a strategy's randomness; the contract fixes them.
SEED_OPTIONS = ("seed", "random_state")
UNKNOWN_SUBJECT = -424242
UNKNOWN_ITEM = -999


def _names() -> list[str]:
    """Every strategy name: built-in, hybrids above, and entry points."""
    with override_settings(PERSONALIZE=SETTINGS):
        try:
            return list(configured_strategy_specs())
        except Exception as exc:
            return [f"!{exc}"]


NAMES = _names()


def _build(spec: StrategySpec) -> Strategy:
    options = dict(spec.options)
    fields = {f.name: f for f in dataclasses.fields(spec.cls.options_class)}
    for name in SEED_OPTIONS:
        if name in fields and name not in options and fields[name].default is None:
            options[name] = 42
    return spec.cls(**options)


_fitted: dict[str, tuple[Strategy, Artifact]] = {}


@pytest.fixture(scope="module")
def dataset():
    return make_dataset(seed=3)


@pytest.fixture
def fitted(request, dataset):
    """(strategy, artifact) for the parametrized name, fitted once per module."""
    name = request.param
    if name.startswith("!"):
        pytest.fail(f"Strategies could not be discovered: {name[1:]}")
    with override_settings(PERSONALIZE=SETTINGS):
        if name not in _fitted:
            spec = configured_strategy_specs()[name]
            strategy = _build(spec)
            _fitted[name] = (strategy, strategy.fit(dataset))
        yield _fitted[name]


def pytest_generate_tests(metafunc):
    if "fitted" in metafunc.fixturenames:
        metafunc.parametrize("fitted", NAMES, indirect=True)


def ask(strategy, artifact, history, k, exclude=()):
    """recommend(), with CannotRecommend turned into None."""
    try:
        return strategy.recommend(artifact, history, k, exclude)
    except CannotRecommend:
        return None


def assert_valid(result, dataset, history, k, exclude=()):
    """The shape of every answer: best first, distinct, known, unseen, not excluded."""
    if result is None:
        return
    assert isinstance(result, list)
    assert len(result) <= max(k, 0)
    catalog = set(dataset.item_ids.tolist())
    ids = [pair[0] for pair in result]
    scores = [pair[1] for pair in result]
    assert all(len(pair) == 2 for pair in result)
    assert len(set(ids)) == len(ids), "an item is recommended twice"
    assert set(ids) <= catalog, f"unknown items {set(ids) - catalog}"
    assert not set(ids) & set(history.item_ids), "a history item was recommended"
    assert not set(ids) & set(exclude), "an excluded item was recommended"
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert scores == sorted(scores, reverse=True), "not best first"


def typical_history(dataset) -> History:
    return dataset.history(dataset.subject_ids[0].item())


def test_declares_its_contract(fitted):
    strategy, artifact = fitted
    cls = type(strategy)
    assert set(cls.needs) <= NEEDS
    assert isinstance(cls.artifact_version, int)
    assert artifact.meta["strategy"] == f"{cls.__module__}.{cls.__qualname__}"
    assert artifact.meta["artifact_version"] == cls.artifact_version
    assert artifact.meta["options"] == strategy.options.as_dict()
    assert all(a.dtype != object for a in artifact.arrays.values())


def test_typical_history(fitted, dataset):
    strategy, artifact = fitted
    history = typical_history(dataset)
    result = ask(strategy, artifact, history, 5)
    assert_valid(result, dataset, history, 5)


def test_unknown_subject(fitted, dataset):
    strategy, artifact = fitted
    known_items = dataset.item_ids[:3].tolist()
    for history in (History(item_ids=known_items, subject_id=UNKNOWN_SUBJECT),
                    History(subject_id=UNKNOWN_SUBJECT)):
        assert_valid(ask(strategy, artifact, history, 5), dataset, history, 5)


def test_unknown_item(fitted, dataset):
    strategy, artifact = fitted
    base = typical_history(dataset)
    history = History(item_ids=[*base.item_ids, UNKNOWN_ITEM],
                      weights=[*(base.weights or [1.0] * len(base)), 1.0],
                      subject_id=base.subject_id)
    assert_valid(ask(strategy, artifact, history, 5), dataset, history, 5)
    only_unknown = History(item_ids=[UNKNOWN_ITEM], subject_id=UNKNOWN_SUBJECT)
    assert_valid(ask(strategy, artifact, only_unknown, 5), dataset, only_unknown, 5)
    with pytest.raises(CannotRecommend):
        strategy.similar(artifact, UNKNOWN_ITEM, 5)
    assert strategy.explain(artifact, base, UNKNOWN_ITEM) is None


def test_empty_history(fitted, dataset):
    strategy, artifact = fitted
    history = History()
    assert_valid(ask(strategy, artifact, history, 5), dataset, history, 5)


def test_subject_who_has_seen_everything(fitted, dataset):
    strategy, artifact = fitted
    history = History(item_ids=dataset.item_ids.tolist(),
                      subject_id=dataset.subject_ids[0].item())
    assert ask(strategy, artifact, history, 5) in (None, [])


def test_k_larger_than_the_catalog(fitted, dataset):
    strategy, artifact = fitted
    history = typical_history(dataset)
    k = dataset.n_items * 3
    result = ask(strategy, artifact, history, k)
    assert_valid(result, dataset, history, k)
    if result is not None:
        assert len(result) <= dataset.n_items - len(set(history.item_ids))


def test_k_zero(fitted, dataset):
    strategy, artifact = fitted
    assert ask(strategy, artifact, typical_history(dataset), 0) in (None, [])


def test_excluded_items_are_never_returned(fitted, dataset):
    strategy, artifact = fitted
    for history in (typical_history(dataset), History()):
        first = ask(strategy, artifact, history, 10)
        if not first:
            continue
        exclude = [item for item, _ in first[:4]] + [UNKNOWN_ITEM]
        second = ask(strategy, artifact, history, 10, exclude)
        assert_valid(second, dataset, history, 10, exclude)


def test_similar_items(fitted, dataset):
    strategy, artifact = fitted
    item = dataset.item_ids[0].item()
    try:
        result = strategy.similar(artifact, item, 5, exclude=[dataset.item_ids[1].item()])
    except CannotRecommend:
        return  # similar() is optional
    assert_valid(result, dataset, History(item_ids=[item]), 5, [dataset.item_ids[1].item()])


def test_explain_names_a_history_item(fitted, dataset):
    strategy, artifact = fitted
    history = typical_history(dataset)
    result = ask(strategy, artifact, history, 3)
    for item, _ in result or []:
        reason = strategy.explain(artifact, history, item)
        assert reason is None or reason in history.item_ids


def test_determinism(fitted, dataset, request):
    strategy, artifact = fitted
    with override_settings(PERSONALIZE=SETTINGS):
        twin = _build(configured_strategy_specs()[request.node.callspec.params["fitted"]])
        again = twin.fit(dataset)
    for history in (typical_history(dataset), History()):
        first = ask(strategy, artifact, history, 10)
        second = ask(twin, again, history, 10)
        assert (first is None) == (second is None)
        if first is not None:
            assert [i for i, _ in first] == [i for i, _ in second]
            assert np.allclose([s for _, s in first], [s for _, s in second], rtol=1e-5)


def _same_answers(strategy, one, other, dataset):
    for history in (typical_history(dataset), History()):
        first = ask(strategy, one, history, 10)
        second = ask(strategy, other, history, 10)
        assert (first is None) == (second is None)
        if first is not None:
            assert [i for i, _ in first] == [i for i, _ in second]
            assert np.allclose([s for _, s in first], [s for _, s in second])


def test_round_trip_through_bytes(fitted, dataset):
    strategy, artifact = fitted
    loaded = Artifact.from_bytes(artifact.to_bytes())
    # meta is JSON: it must survive the trip unchanged (no tuples, no non-str keys)
    expected = json.loads(json.dumps(artifact.meta))
    assert {k: v for k, v in loaded.meta.items() if k != "format"} == expected
    assert set(loaded.arrays) == set(artifact.arrays)
    _same_answers(strategy, artifact, loaded, dataset)


def test_round_trip_through_storage(fitted, dataset):
    strategy, artifact = fitted
    path, size = save_artifact(artifact, f"contract/{type(strategy).__name__}")
    try:
        assert size > 0
        _same_answers(strategy, artifact, load_artifact(path), dataset)
    finally:
        delete_artifact(path)


# --- the contract's own checks can fail ----------------------------------------------


@pytest.mark.parametrize(("result", "message"), [
    ([(101, 1.0), (101, 0.5)], "twice"),
    ([(101, 1.0), (-5, 0.5)], "unknown items"),
    ([(102, 1.0)], "history item"),
    ([(103, 1.0)], "excluded item"),
    ([(104, 0.5), (105, 1.0)], "best first"),
])
def test_assert_valid_rejects_broken_answers(result, message):
    dataset = make_dataset(seed=3)
    with pytest.raises(AssertionError, match=message):
        assert_valid(result, dataset, History(item_ids=[102]), 5, exclude=[103])
