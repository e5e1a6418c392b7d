"""The strategy contract test: :class:`StrategyContractTests` (see :mod:`personalize.testing`)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personalize.dataset import Dataset
from personalize.strategies import Artifact, CannotRecommend, History, Strategy
from personalize.strategies.base import GENERIC_REASONS, SIMILAR_REASONS, class_path
from personalize.testing.answers import (
    ask,
    assert_robust,
    assert_same_answers,
    assert_valid_answer,
)
from personalize.testing.data import (
    UNKNOWN_ITEM,
    UNKNOWN_SUBJECT,
    sparse_datasets,
    synthetic_shop,
)
from personalize.training.storage import delete_artifact, load_artifact, save_artifact

#: What a strategy may declare it reads from a dataset.
NEEDS = frozenset({"interactions", "ratings", "texts", "categories", "timestamps"})


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
