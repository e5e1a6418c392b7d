"""Explanations name what caused a pick: the event, co-purchase, trending, popularity."""

from __future__ import annotations

import pytest
from django.test import override_settings

from personalize.conf import DEFAULTS
from personalize.dataset import Dataset
from personalize.models import Event, Item, Placement, Subject
from personalize.serving.explanations import source_event_types
from personalize.serving.loader import ActiveModel
from personalize.serving.service import Recommendation, recommend, similar_items
from personalize.strategies import History, Strategy
from personalize.strategies.ease import EASE
from personalize.strategies.gated import Gated
from personalize.strategies.hybrid import Blend
from personalize.strategies.item_knn import ItemKNN
from personalize.strategies.popularity import Popularity, Trending
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import make_model

pytestmark = pytest.mark.django_db


def did(subject: Subject, item: Item, event_type: str, value: float | None = None) -> None:
    Event.objects.create(subject=subject, item=item, event_type=event_type, value=value)


def by_item(recs: list[Recommendation]) -> dict[str, str]:
    return {r.item.external_id: r.explanation for r in recs}


# --- what the subject did ----------------------------------------------------------------


@pytest.mark.parametrize(("event_type", "value", "text"), [
    ("purchase", None, "Because you bought Book 1"),
    ("view", None, "Because you viewed Book 1"),
    ("rating", 4.5, "Because you rated Book 1"),
    ("add_to_cart", None, "Because you added Book 1 to your cart"),
    ("like", None, "Because you liked Book 1"),
])
def test_the_reason_names_the_event_behind_the_pick(
    catalog_items, active_models, consenting_subject, event_type, value, text
):
    c = catalog_items
    did(consenting_subject, c["b1"], event_type, value)
    active_models["item_knn"] = make_model("item_knn", [c["b3"].pk, c["b2"].pk])
    recs = recommend(consenting_subject, "home", limit=2)
    assert [r.explanation for r in recs] == [text, text]
    assert all(r.personalized for r in recs)


def test_a_site_event_type_gets_a_neutral_reason(
    catalog_items, active_models, consenting_subject, settings
):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "EXTRA_EVENT_TYPES": {"wishlist": 3.0}}
    did(consenting_subject, catalog_items["b1"], "wishlist")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b3"].pk])
    assert recommend(consenting_subject, "home", limit=1)[0].explanation == (
        "Because of your interest in Book 1")


@pytest.mark.parametrize(("events", "text"), [
    # the strongest event of the item wins, whatever came last
    (["view", "purchase", "view"], "Because you bought Book 1"),
    (["purchase", "add_to_cart"], "Because you bought Book 1"),
    (["view", "add_to_cart", "view"], "Because you added Book 1 to your cart"),
    # equal weights (a rating counts as 1, like a view): the latest
    (["view", "rating"], "Because you rated Book 1"),
    (["rating", "view"], "Because you viewed Book 1"),
])
def test_several_events_on_the_named_item(
    catalog_items, active_models, consenting_subject, events, text
):
    for event_type in events:
        did(consenting_subject, catalog_items["b1"], event_type,
            4.0 if event_type == "rating" else None)
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b3"].pk])
    assert recommend(consenting_subject, "home", limit=1)[0].explanation == text


def test_source_event_types_of_history_items():
    history = History(item_ids=[7, 8, 7, 9], weights=[1.0, 8.0, 4.0, 1.0])
    types = ["view", "purchase", "add_to_cart", "click"]
    assert source_event_types([7, None, 8, 9, 10], history, types) == [
        "add_to_cart", None, "purchase", "click", None]
    assert source_event_types([7], history, None) == [None]  # types unknown
    assert source_event_types(["x"], history, types) == [None]  # not an Item pk
    assert source_event_types([7], History(), []) == [None]


# --- per strategy, with real trained models ----------------------------------------------


@pytest.fixture
def trained(catalog_items):
    """Fit real strategies on co-purchases among the catalog items (ids are Item pks)."""
    c = catalog_items
    baskets = [["b1", "b2"], ["b1", "b2", "b3"], ["b1", "b3"], ["b2", "b3"],
               ["t1", "t2"], ["t1", "t2"], ["t2", "t3"], ["b1", "b2"]]
    subjects, items = [], []
    for n, basket in enumerate(baskets):
        subjects += [n + 1000] * len(basket)
        items += [c[name].pk for name in basket]
    # a day apart, in basket order: the tools, bought last, are trending
    stamps = [1_700_000_000.0 + 86_400.0 * n for n in range(len(items))]
    dataset = Dataset.from_arrays(subjects, items, "purchase", timestamps=stamps)

    def fit(name: str, strategy: Strategy) -> ActiveModel:
        with override_settings(PERSONALIZE={"STRATEGIES": DEFAULTS["STRATEGIES"]}):
            artifact = strategy.fit(dataset)
        return ActiveModel(name=name, version=1, strategy=strategy, artifact=artifact)

    return fit


@pytest.mark.parametrize("name", ["item_knn", "ease", "blend", "gated"])
def test_collaborative_strategies_name_the_purchase(
    catalog_items, active_models, consenting_subject, trained, name
):
    c = catalog_items
    strategy = {"item_knn": ItemKNN(neighbours=5, shrinkage=0.0), "ease": EASE(),
                "blend": Blend(strategies={"ease": 0.5, "item_knn": 0.5}),
                "gated": Gated(strategies={"ease": [0, 0.2, 0.5, 0.5, 0.8],
                                           "item_knn": [0, 0.8, 0.5, 0.5, 0.2],
                                           "popular": [1, 0, 0, 0, 0]})}[name]
    active_models[name] = trained(name, strategy)
    Placement.objects.create(name="home", strategy=name)
    did(consenting_subject, c["b1"], "view")
    did(consenting_subject, c["b1"], "purchase")
    recs = [r for r in recommend(consenting_subject, "home", limit=4) if r.strategy == name]
    assert {r.item.external_id for r in recs} >= {"b2", "b3"}
    assert by_item(recs)["b2"] == "Because you bought Book 1"
    assert by_item(recs)["b3"] == "Because you bought Book 1"


def test_trending_picks_say_trending_now(catalog_items, active_models, consenting_subject,
                                         trained):
    active_models["trending"] = trained("trending", Trending())
    Placement.objects.create(name="home", strategy="trending")
    did(consenting_subject, catalog_items["g1"], "view")
    recs = [r for r in recommend(consenting_subject, "home", limit=3)
            if r.strategy == "trending"]
    assert recs and {r.explanation for r in recs} == {"Trending now"}


def test_a_trending_fallback_for_a_newcomer_says_trending_now(catalog_items, active_models,
                                                              trained):
    active_models["trending"] = trained("trending", Trending())
    Placement.objects.create(name="home", fallback="trending")
    recs = recommend(None, "home", limit=2)
    assert [r.strategy for r in recs] == ["trending", "trending"]
    assert [r.explanation for r in recs] == ["Trending now", "Trending now"]


def test_popularity_picks_say_popular_in_their_category(catalog_items, active_models,
                                                        consenting_subject, trained):
    active_models["popular"] = trained("popular", Popularity())
    Placement.objects.create(name="home", strategy="popular")
    did(consenting_subject, catalog_items["g1"], "view")
    recs = recommend(consenting_subject, "home", limit=3)
    assert recs[0].strategy == "popular"
    assert {r.explanation for r in recs} <= {"Popular in Books", "Popular in Tools"}


# --- similar items -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["item_knn", "ease"])
def test_co_occurrence_similar_items_say_customers_also_bought(
    catalog_items, active_models, trained, name
):
    c = catalog_items
    strategy = ItemKNN(neighbours=5, shrinkage=0.0) if name == "item_knn" else EASE()
    active_models[name] = trained(name, strategy)
    recs = [r for r in similar_items(c["b1"], limit=3, strategy=name) if r.strategy == name]
    assert {r.item.external_id for r in recs} >= {"b2"}
    assert {r.explanation for r in recs} == {"Customers who bought Book 1 also bought this"}


def test_content_similar_items_say_similar_to(catalog_items, active_models):
    c = catalog_items
    active_models["embeddings"] = make_model("embeddings", [], similar={c["b1"].pk: [c["b4"].pk]})
    recs = similar_items(c["b1"], limit=1, strategy="embeddings")
    assert recs[0].explanation == "Similar to Book 1"


def test_built_in_strategies_declare_how_they_are_explained():
    assert (ItemKNN.similar_reason, EASE.similar_reason) == ("bought_together",) * 2
    assert (Trending.generic_reason, Popularity.generic_reason) == ("trending", "popular")
    assert (Strategy.generic_reason, Strategy.similar_reason) == ("recommended", "similar")
