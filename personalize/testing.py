"""The strategy contract test, for every strategy: built-in, plugin, or your own.

Subclass :class:`StrategyContractTests` in your package's test suite (pytest
with pytest-django, or any pytest run with Django settings configured)::

    from personalize.testing import StrategyContractTests
    from my_package import MyStrategy


    class TestMyStrategyContract(StrategyContractTests):
        strategy_class = MyStrategy
        options = {"factors": 8}

Every test fits the strategy once on :func:`synthetic_shop` (override
:meth:`StrategyContractTests.make_dataset` for other data) and checks what core
relies on: answers of the right shape (at most ``k`` distinct catalog items,
best first, none from the history or the exclusions) or ``CannotRecommend``;
unknown subjects and items; artifacts stamped by ``Strategy.new_artifact``
that survive bytes and Django storage; ``recommend_many`` and ``explain_many``
agreeing with their one-at-a-time forms; and erasure: after
``forget_subjects`` the artifact answers for an erased subject exactly as for
one it never saw.

``test_robust_on_any_data`` fits the strategy on random sparse datasets
(:func:`sparse_datasets`: single-event subjects, items seen once, string or
integer ids, ratings mixed with implicit events) and asks every hook with
awkward requests (:func:`assert_robust`): the strategy answers or raises
``CannotRecommend``, never anything else. Set
:attr:`StrategyContractTests.robustness_examples` lower for a slow strategy.
The contract tests need pytest and hypothesis.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalize.dataset import Dataset, ItemContent
from personalize.strategies import Artifact, CannotRecommend, History, Scored, Strategy
from personalize.strategies.base import GENERIC_REASONS, SIMILAR_REASONS, class_path
from personalize.training.storage import delete_artifact, load_artifact, save_artifact

#: What a strategy may declare it reads from a dataset.
NEEDS = frozenset({"interactions", "ratings", "texts", "categories", "timestamps"})
#: A subject id and an item id that no dataset of the contract holds.
UNKNOWN_SUBJECT = -424242
UNKNOWN_ITEM = -999

_CATEGORIES = ("shirts", "shoes", "hats", "bags")
_COLOURS = ("red", "blue", "green", "black", "white")


def synthetic_shop(seed: int = 0, subjects: int = 60, items: int = 40) -> Dataset:
    """A small shop every strategy can fit: interactions, ratings, texts and categories.

    Item ids are ``101..100+items`` and subject ids ``1..subjects`` (integers,
    like ``Item.pk`` and ``Subject.pk``); items fall in 4 categories, with a
    long tail of appeal, and each shopper prefers one category. Each shopper
    has 8 events mixing views, clicks, purchases and ratings over 60 days.
    """
    rng = np.random.default_rng(seed)
    item_ids = np.arange(101, 101 + items)
    category_of = np.arange(items) % len(_CATEGORIES)
    appeal = 1.0 / np.arange(1, items + 1) ** 0.8
    who, what, kinds, values, stamps = [], [], [], [], []
    for subject in range(1, subjects + 1):
        liked = (subject - 1) % len(_CATEGORIES)
        weights = appeal * np.where(category_of == liked, 6.0, 1.0)
        chosen = rng.choice(items, size=8, replace=False, p=weights / weights.sum())
        for position, item in enumerate(chosen):
            kind = ("view", "click", "purchase", "rating")[position % 4]
            who.append(subject)
            what.append(item_ids[item])
            kinds.append(kind)
            values.append(float(rng.integers(3, 6)) if kind == "rating" else np.nan)
            stamps.append(1_700_000_000.0 + rng.uniform(0, 60) * 86_400.0)
    names = [f"{_CATEGORIES[c][:-1]}" for c in category_of]
    content = ItemContent(
        ids=item_ids,
        titles=[f"{_COLOURS[n % 5]} {names[n]} {n}" for n in range(items)],
        texts=[f"A {_COLOURS[n % 5]} {names[n]} made of {('cotton', 'leather', 'wool')[n % 3]}, "
               f"model {n}." for n in range(items)],
        categories=[[_CATEGORIES[c]] for c in category_of],
        attributes=[{"price": float(10 + n)} for n in range(items)],
    )
    return Dataset.from_arrays(who, what, kinds, values, stamps, content=content)


def sparse_shop(seed: int = 5) -> Dataset:
    """:func:`synthetic_shop` (30 subjects, 25 items) plus the awkward shapes, for evaluation.

    Three newcomers: one with a single view of an item nobody else saw, one who
    rated another such item and viewed a popular one, so that every protocol
    meets single-event subjects and items seen once.
    """
    shop = synthetic_shop(seed=seed, subjects=30, items=25)
    events = shop.events
    who = [*shop.subject_ids[events.subject_idx].tolist(), 900, 901, 901]
    what = [*shop.item_ids[events.item_idx].tolist(), 990, 991, 101]
    kinds = [*(shop.event_types[t] for t in events.event_type.tolist()), "view", "rating", "view"]
    values = [*events.rating.tolist(), None, 4.0, None]
    stamps = [*events.timestamp.tolist(), 1.8e9, 1.8e9, 1.8e9 + 1]
    return Dataset.from_arrays(who, what, kinds, values, stamps,
                               content=_content_of(shop, [990, 991]))


def _content_of(shop: Dataset, extra: list[int]) -> ItemContent:
    ids = [*shop.item_ids.tolist(), *extra]
    return ItemContent(
        ids=np.asarray(ids),
        titles=[*shop.item_titles, *(f"item {n}" for n in extra)],
        texts=[*shop.item_texts, *(f"A plain item, model {n}." for n in extra)],
        categories=[*shop.item_categories, *([_CATEGORIES[0]] for _ in extra)],
        attributes=[*shop.item_attributes, *({} for _ in extra)],
    )


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


_KINDS = ("view", "click", "purchase", "rating")


@st.composite
def sparse_datasets(draw: st.DrawFn) -> Dataset:
    """A random, sparse snapshot of the awkward shapes real data has (hypothesis).

    Few subjects and items (a subject may have a single event, an item may be
    seen once, some items have no neighbour at all, catalog items may have no
    event), integer or string ids, implicit events alone, ratings alone or both
    mixed, zero-weight and negative events, with or without timestamps; every
    item has a title, a text and a category.
    """
    n_items = draw(st.integers(1, 12))
    n_subjects = draw(st.integers(1, 10))
    kinds = draw(st.sampled_from([("view",), ("rating",), _KINDS, ("view", "purchase"),
                                  ("impression", "dislike", "view", "rating")]))
    string_ids = draw(st.booleans())
    timed = draw(st.booleans())
    who: list[Any] = []
    what: list[Any] = []
    types: list[str] = []
    values: list[float] = []
    stamps: list[float] = []
    for subject in range(1, n_subjects + 1):
        chosen = draw(st.lists(st.integers(0, n_items - 1), min_size=1, max_size=5))
        for item in chosen:
            kind = draw(st.sampled_from(kinds))
            who.append(f"s{subject}" if string_ids else subject)
            what.append(f"i{101 + item}" if string_ids else 101 + item)
            types.append(kind)
            values.append(draw(st.sampled_from([1.0, 2.5, 4.0, 5.0])) if kind == "rating"
                          else np.nan)
            stamps.append(1_700_000_000.0 + len(stamps) * 3_600.0 if timed else 0.0)
    # catalog items nobody touched: a column each, and no neighbour
    unseen = draw(st.integers(0, 2))
    seen = [*sorted(set(what), key=str),
            *((f"i{900 + n}" if string_ids else 900 + n) for n in range(unseen))]
    content = ItemContent(
        ids=np.asarray(seen),
        titles=[f"item {item}" for item in seen],
        texts=[f"A {_COLOURS[n % 5]} {_CATEGORIES[n % 4][:-1]} called {item}."
               for n, item in enumerate(seen)],
        categories=[[_CATEGORIES[n % 4]] for n in range(len(seen))],
        attributes=[{} for _ in seen],
    )
    return Dataset.from_arrays(who, what, types, values, stamps, content=content)


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


class StrategyContractTests:
    """What core relies on from a strategy; subclass it and set :attr:`strategy_class`."""

    #: The strategy under test.
    strategy_class: ClassVar[type[Strategy]]
    #: Options it is built with.
    options: ClassVar[dict[str, Any]] = {}
    #: How many random datasets :meth:`test_robust_on_any_data` fits it on (fewer when slow).
    robustness_examples: ClassVar[int] = 30

    def make_dataset(self) -> Dataset:
        """The data the strategy is fitted on (default: :func:`synthetic_shop`)."""
        return synthetic_shop(seed=3)

    def make_strategy(self) -> Strategy:
        """The strategy under test, built with :attr:`options`."""
        return self.strategy_class(**self.options)

    # class-scoped: the strategy is fitted once for all the tests of a class
    @pytest.fixture(scope="class")
    @classmethod
    def dataset(cls) -> Dataset:
        return cls().make_dataset()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, dataset: Dataset) -> tuple[Strategy, Artifact]:
        strategy = cls().make_strategy()
        return strategy, strategy.fit(dataset)

    @staticmethod
    def typical_history(dataset: Dataset) -> History:
        """The history of the dataset's first subject."""
        return History.from_dataset(dataset, dataset.subject_ids[0].item())

    # --- what the strategy declares -----------------------------------------------------

    def test_declares_its_contract(self, fitted: tuple[Strategy, Artifact]) -> None:
        strategy, artifact = fitted
        cls = type(strategy)
        assert set(cls.needs) <= NEEDS, f"unknown needs {set(cls.needs) - NEEDS}"
        assert isinstance(cls.artifact_version, int)
        # serving words the strategy's picks by these
        assert cls.generic_reason in GENERIC_REASONS, f"generic_reason {cls.generic_reason!r}"
        assert cls.similar_reason in SIMILAR_REASONS, f"similar_reason {cls.similar_reason!r}"
        # stamped by Strategy.new_artifact: core serves it with these
        assert artifact.meta["strategy"] == class_path(cls)
        assert artifact.meta["artifact_version"] == cls.artifact_version
        assert artifact.meta["options"] == strategy.options.as_dict()
        assert all(array.dtype != object for array in artifact.arrays.values())
        strategy.check_artifact(artifact)

    # --- answers -------------------------------------------------------------------------

    def test_typical_history(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        history = self.typical_history(dataset)
        assert_valid_answer(ask(strategy, artifact, history, 5), dataset, history, 5)

    def test_unknown_subject(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        known = dataset.item_ids[:3].tolist()
        for history in (History(item_ids=known, subject_id=UNKNOWN_SUBJECT),
                        History(subject_id=UNKNOWN_SUBJECT)):
            assert_valid_answer(ask(strategy, artifact, history, 5), dataset, history, 5)

    def test_unknown_item(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        base = self.typical_history(dataset)
        history = History(item_ids=[*base.item_ids, UNKNOWN_ITEM],
                          weights=[*(base.weights or [1.0] * len(base)), 1.0],
                          subject_id=base.subject_id)
        assert_valid_answer(ask(strategy, artifact, history, 5), dataset, history, 5)
        only_unknown = History(item_ids=[UNKNOWN_ITEM], subject_id=UNKNOWN_SUBJECT)
        assert_valid_answer(ask(strategy, artifact, only_unknown, 5), dataset, only_unknown, 5)
        with pytest.raises(CannotRecommend):
            strategy.similar(artifact, UNKNOWN_ITEM, 5)
        assert strategy.explain(artifact, base, UNKNOWN_ITEM) is None

    def test_empty_history(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        assert_valid_answer(ask(strategy, artifact, History(), 5), dataset, History(), 5)

    def test_a_subject_who_has_seen_everything(self, fitted: tuple[Strategy, Artifact],
                                               dataset: Dataset) -> None:
        strategy, artifact = fitted
        history = History(item_ids=dataset.item_ids.tolist(),
                          subject_id=dataset.subject_ids[0].item())
        assert ask(strategy, artifact, history, 5) in (None, [])

    def test_k_larger_than_the_catalog(self, fitted: tuple[Strategy, Artifact],
                                       dataset: Dataset) -> None:
        strategy, artifact = fitted
        history = self.typical_history(dataset)
        k = dataset.n_items * 3
        result = ask(strategy, artifact, history, k)
        assert_valid_answer(result, dataset, history, k)
        assert len(result or []) <= dataset.n_items - len(set(history.item_ids))

    def test_k_zero(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        assert ask(strategy, artifact, self.typical_history(dataset), 0) in (None, [])

    def test_excluded_items_are_never_returned(self, fitted: tuple[Strategy, Artifact],
                                               dataset: Dataset) -> None:
        strategy, artifact = fitted
        for history in (self.typical_history(dataset), History()):
            first = ask(strategy, artifact, history, 10)
            if not first:
                continue
            exclude = [item for item, _ in first[:4]] + [UNKNOWN_ITEM]
            second = ask(strategy, artifact, history, 10, exclude)
            assert_valid_answer(second, dataset, history, 10, exclude)

    def test_similar_items(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        item, excluded = dataset.item_ids[0].item(), dataset.item_ids[1].item()
        try:
            result = strategy.similar(artifact, item, 5, exclude=[excluded])
        except CannotRecommend:
            return  # similar() is optional
        assert_valid_answer(result, dataset, History(item_ids=[item]), 5, [excluded])

    def test_recommend_many_agrees_with_recommend(self, fitted: tuple[Strategy, Artifact],
                                                  dataset: Dataset) -> None:
        strategy, artifact = fitted
        histories = [History.from_dataset(dataset, subject)
                     for subject in dataset.subject_ids[:8].tolist()]
        histories += [History(), History(item_ids=[UNKNOWN_ITEM], subject_id=UNKNOWN_SUBJECT)]
        exclude = [dataset.item_ids[2].item()]
        many = strategy.recommend_many(artifact, histories, 7, exclude)
        assert len(many) == len(histories)
        for history, answer in zip(histories, many, strict=True):
            assert_same_answers(answer, ask(strategy, artifact, history, 7, exclude))

    def test_score_items_agrees_with_recommend(self, fitted: tuple[Strategy, Artifact],
                                               dataset: Dataset) -> None:
        strategy, artifact = fitted
        history = self.typical_history(dataset)
        result = ask(strategy, artifact, history, 5)
        scores = strategy.score_items(artifact, history, [item for item, _ in result or []])
        if scores is None or not result:
            return  # score_items() is optional
        assert np.allclose(np.asarray(scores, dtype=np.float64), [s for _, s in result],
                           rtol=1e-5)

    def test_explanations(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        history = self.typical_history(dataset)
        items = [item for item, _ in ask(strategy, artifact, history, 5) or []]
        reasons = strategy.explain_many(artifact, history, [*items, UNKNOWN_ITEM])
        assert reasons == [strategy.explain(artifact, history, item)
                           for item in [*items, UNKNOWN_ITEM]]
        assert all(reason is None or reason in history.item_ids for reason in reasons)

    def test_optional_vectors(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        folded = strategy.fold_in(artifact, self.typical_history(dataset))
        assert folded is None or (np.ndim(folded) == 1 and np.all(np.isfinite(folded)))
        ids = [*dataset.item_ids[:3].tolist(), UNKNOWN_ITEM]
        vectors = strategy.item_vectors(artifact, ids)
        if vectors is not None:
            assert np.ndim(vectors) == 2 and len(vectors) == len(ids)

    def test_robust_on_any_data(self) -> None:
        # a fresh strategy per example; no example database: nothing is written to disk
        @settings(max_examples=self.robustness_examples, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(dataset=sparse_datasets(), k=st.sampled_from([1, 3, 50]))
        def check(dataset: Dataset, k: int) -> None:
            assert_robust(self.make_strategy(), dataset, k)

        check()

    def test_determinism(self, fitted: tuple[Strategy, Artifact], dataset: Dataset) -> None:
        strategy, artifact = fitted
        twin = self.make_strategy()
        again = twin.fit(dataset)
        for history in (self.typical_history(dataset), History()):
            assert_same_answers(ask(strategy, artifact, history, 10),
                                ask(twin, again, history, 10))

    def test_refit_serves_like_fit(self, fitted: tuple[Strategy, Artifact],
                                   dataset: Dataset) -> None:
        strategy, artifact = fitted
        previous = Artifact.from_bytes(artifact.to_bytes())  # as training loads the live one
        again = self.make_strategy().refit(dataset, previous)
        self.make_strategy().check_artifact(again)
        for history in (self.typical_history(dataset), History()):
            assert_same_answers(ask(strategy, artifact, history, 10),
                                ask(strategy, again, history, 10))

    # --- artifacts -----------------------------------------------------------------------

    def _assert_serves_alike(self, strategy: Strategy, one: Artifact, other: Artifact,
                             dataset: Dataset) -> None:
        for history in (self.typical_history(dataset), History()):
            assert_same_answers(ask(strategy, one, history, 10), ask(strategy, other, history, 10))

    def test_round_trip_through_bytes(self, fitted: tuple[Strategy, Artifact],
                                      dataset: Dataset) -> None:
        strategy, artifact = fitted
        loaded = Artifact.from_bytes(artifact.to_bytes())
        # meta is JSON: it must survive the trip unchanged (no tuples, no non-str keys)
        expected = json.loads(json.dumps(artifact.meta))
        assert {k: v for k, v in loaded.meta.items() if k != "format"} == expected
        assert set(loaded.arrays) == set(artifact.arrays)
        self._assert_serves_alike(strategy, artifact, loaded, dataset)

    def test_round_trip_through_storage(self, fitted: tuple[Strategy, Artifact],
                                        dataset: Dataset) -> None:
        strategy, artifact = fitted
        path, size = save_artifact(artifact, f"contract/{type(strategy).__name__}")
        try:
            assert size > 0
            self._assert_serves_alike(strategy, artifact, load_artifact(path), dataset)
        finally:
            delete_artifact(path)

    # --- erasure -------------------------------------------------------------------------

    def test_an_erased_subject_is_a_stranger(self, fitted: tuple[Strategy, Artifact],
                                             dataset: Dataset) -> None:
        strategy, artifact = fitted
        erased = dataset.subject_ids[:3].tolist()
        copy = Artifact.from_bytes(artifact.to_bytes())  # the fitted one serves other tests
        strategy.forget_subjects(copy, erased)
        items = dataset.item_ids[:10].tolist()
        for subject in erased:
            # after an erasure the subject's events are gone: the live history is empty
            assert_same_answers(ask(strategy, copy, History(subject_id=subject), 10),
                                ask(strategy, copy, History(subject_id=UNKNOWN_SUBJECT), 10))
            predicted = strategy.predict(copy, subject, items)
            stranger = strategy.predict(copy, UNKNOWN_SUBJECT, items)
            assert (predicted is None) == (stranger is None)
            if predicted is not None and stranger is not None:
                assert np.allclose(predicted, stranger, equal_nan=True)
        # the others are still served (not always as before: an erased neighbour's
        # ratings no longer shape them)
        for subject in dataset.subject_ids[3:6].tolist():
            history = History.from_dataset(dataset, subject)
            assert_valid_answer(ask(strategy, copy, history, 10), dataset, history, 10)
