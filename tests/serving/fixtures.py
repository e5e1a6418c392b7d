"""Fixtures for the serving tests: a small catalog, fake strategies and active models.

Imported by the serving, template tag, API and admin tests with
``from tests.serving.fixtures import *``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest

from personalize.backends.cache import reset_warning_throttle
from personalize.experiments import assignment
from personalize.models import ConsentRecord, Item, Subject
from personalize.serving import catalog, placements, popularity
from personalize.serving.loader import ActiveModel
from personalize.serving.stats import stats
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend, Strategy
from personalize.strategies.history import History

__all__ = [
    "FakeStrategy",
    "active_models",
    "catalog_items",
    "consenting_subject",
    "fresh_serving_state",
    "grant",
    "make_model",
]


class FakeStrategy(Strategy):
    """Ranks the items listed in ``artifact.meta["ranking"]`` (pks), best first.

    ``meta["similar"]`` maps a pk to its similar pks. Raises ``CannotRecommend``
    for an empty history unless ``meta["cold"]`` is true. ``explain`` names the
    latest history item.
    """

    calls: list[tuple[str, Any]] = []

    def fit(self, dataset: Any) -> Artifact:
        raise NotImplementedError

    def recommend(self, artifact: Artifact, history: History, k: int,
                  exclude: Iterable[Any] = ()) -> list[tuple[Any, float]]:
        FakeStrategy.calls.append(("recommend", (list(history.item_ids), k, list(exclude))))
        if not len(history) and not artifact.meta.get("cold"):
            raise CannotRecommend("no history")
        if artifact.meta.get("boom"):
            raise RuntimeError("strategy bug")
        skip = set(exclude) | set(history.item_ids)
        ranking = [pk for pk in artifact.meta["ranking"] if pk not in skip][:k]
        return [(pk, float(len(ranking) - n)) for n, pk in enumerate(ranking)]

    def similar(self, artifact: Artifact, item_id: Any, k: int,
                exclude: Iterable[Any] = ()) -> list[tuple[Any, float]]:
        FakeStrategy.calls.append(("similar", (item_id, k, list(exclude))))
        similar = artifact.meta.get("similar", {}).get(item_id)
        if similar is None:
            raise CannotRecommend("unknown item")
        ranking = [pk for pk in similar if pk not in set(exclude)][:k]
        return [(pk, 1.0 - n / 100) for n, pk in enumerate(ranking)]

    def explain(self, artifact: Artifact, history: History, item_id: Any) -> Any:
        return history.item_ids[-1] if len(history) else None


def make_model(name: str, ranking: list[int] | None = None, *, version: int = 1,
               **meta: Any) -> ActiveModel:
    artifact = Artifact(arrays={"item_ids": np.asarray(sorted(ranking or []), dtype=np.int64)},
                        meta={"ranking": list(ranking or []), **meta})
    return ActiveModel(name=name, version=version, strategy=FakeStrategy(), artifact=artifact)


@pytest.fixture(autouse=True)
def fresh_serving_state():
    """Per-process serving state starts empty in every test."""
    catalog.clear()
    placements.clear()
    assignment.clear()
    popularity.clear()
    stats.reset()
    reset_warning_throttle()
    FakeStrategy.calls = []
    yield
    catalog.clear()
    placements.clear()
    assignment.clear()
    popularity.clear()


@pytest.fixture
def active_models(monkeypatch) -> dict[str, ActiveModel]:
    """``get_active_model`` answers from this dict (missing name: nothing trained)."""
    models: dict[str, ActiveModel] = {}
    monkeypatch.setattr("personalize.serving.loader.get_active_model",
                        lambda name: models.get(name))
    return models


@pytest.fixture
def catalog_items(db) -> dict[str, Item]:
    """Six books, six tools (t6 unavailable) and one uncategorised gadget."""
    made: dict[str, Item] = {}
    for n in range(1, 7):
        made[f"b{n}"] = Item.objects.create(external_id=f"b{n}", title=f"Book {n}",
                                            categories=["Books"])
    for n in range(1, 7):
        made[f"t{n}"] = Item.objects.create(external_id=f"t{n}", title=f"Tool {n}",
                                            categories=["Tools"], available=n != 6)
    made["g1"] = Item.objects.create(external_id="g1", title="Gadget", categories=[])
    return made


def grant(subject: Subject) -> None:
    ConsentRecord.objects.create(subject=subject, purpose="personalization", granted=True,
                                 policy_version="1", source="server")


@pytest.fixture
def consenting_subject(db) -> Subject:
    subject = Subject.objects.create(visitor_id="visitor-1")
    grant(subject)
    return subject
