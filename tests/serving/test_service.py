"""The recommend pipeline end to end, with fake strategies standing in for trained models."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.test import RequestFactory, override_settings
from django.utils import timezone

from personalize.backends.cache import personalize_cache
from personalize.conf import DEFAULTS
from personalize.dataset import Dataset
from personalize.models import Event, Item, Placement, Subject
from personalize.serving import service
from personalize.serving.loader import ActiveModel
from personalize.serving.service import Recommendation, recommend, similar_items
from personalize.serving.stats import serving_stats
from personalize.strategies.ease import EASE
from personalize.strategies.hybrid import Blend
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import FakeStrategy, grant, make_model

pytestmark = pytest.mark.django_db


def ext(recs: list[Recommendation]) -> list[str]:
    return [r.item.external_id for r in recs]


def events(subject: Subject, item: Item, event_type: str = "view", n: int = 1, **kw) -> None:
    for _ in range(n):
        Event.objects.create(subject=subject, item=item, event_type=event_type, **kw)


@pytest.fixture
def crowd(catalog_items):
    """Popularity by database events: t1 > t2 > b1 > b2 (weighted purchases and views)."""
    people = [Subject.objects.create() for _ in range(3)]
    for person in people:
        events(person, catalog_items["t1"], "purchase")
    events(people[0], catalog_items["t2"], "purchase", n=2)
    events(people[0], catalog_items["b1"], "click", n=3)
    events(people[1], catalog_items["b2"], "view")
    return catalog_items


def test_empty_catalog_gives_an_empty_list(db, active_models):
    assert recommend(None, "home") == []
    assert recommend(Subject.objects.create(), "home", limit=5) == []
    assert similar_items("nope") == []


def test_anonymous_visitors_get_popular_items_not_personalized(crowd, active_models):
    recs = recommend(None, "home", limit=4)
    assert ext(recs) == ["t1", "t2", "b1", "b2"]
    assert all(isinstance(r, Recommendation) and not r.personalized for r in recs)
    assert recs[0].explanation == "Popular in Tools"
    assert recs[0].strategy == "popular"
    assert recs[0].score > recs[1].score > recs[2].score


def test_explanations_follow_the_active_language(crowd, active_models, monkeypatch):
    from django.utils import translation

    from personalize.serving import explanations

    def catalog(message):  # stands in for Django's gettext and a translated catalog
        return f"[{translation.get_language()}] {message}"

    monkeypatch.setattr(explanations, "gettext", catalog)
    with translation.override("de"):
        assert recommend(None, "home", limit=1)[0].explanation == "[de] Popular in Tools"
    with translation.override("fr"):  # cached per language: computed again
        assert recommend(None, "home", limit=1)[0].explanation == "[fr] Popular in Tools"


def test_the_block_is_always_full_while_items_are_allowed(crowd, active_models):
    recs = recommend(None, "home", limit=20)
    # 13 items, one unavailable: every available item, popular ones first
    assert len(recs) == 12 and "t6" not in ext(recs)
    assert ext(recs)[:4] == ["t1", "t2", "b1", "b2"]
    assert recs[-1].explanation == "You might also like"


def test_consenting_subject_gets_the_strategy_with_explanations(
    catalog_items, active_models, consenting_subject
):
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [c["b3"].pk, c["b2"].pk, c["t1"].pk])
    events(consenting_subject, c["b1"], "view")
    recs = recommend(consenting_subject, "home", limit=3)
    assert ext(recs) == ["b3", "b2", "t1"]
    assert all(r.personalized and r.strategy == "item_knn" for r in recs)
    assert recs[0].explanation == "Because you viewed Book 1"
    # oversampled: the strategy is asked for limit * CANDIDATE_OVERSAMPLING
    call = next(args for name, args in FakeStrategy.calls if name == "recommend")
    assert call[0] == [c["b1"].pk] and call[1] == 9


def test_no_consent_means_no_strategy_and_nothing_personal(catalog_items, active_models, crowd):
    subject = Subject.objects.create(visitor_id="v-no")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["g1"].pk])
    events(subject, catalog_items["b5"], "view")
    recs = recommend(subject, "home", limit=3)
    assert FakeStrategy.calls == []
    assert not any(r.personalized for r in recs)
    assert ext(recs) == ["t1", "t2", "b1"]


def test_opt_out_mode_personalizes_without_a_record(catalog_items, active_models, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CONSENT_MODE": "opt-out"}
    subject = Subject.objects.create()
    events(subject, catalog_items["b1"])
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b4"].pk])
    assert recommend(subject, "home", limit=1)[0].personalized


def test_gpc_header_serves_the_non_personalized_block(
    catalog_items, active_models, consenting_subject, crowd
):
    active_models["item_knn"] = make_model("item_knn", [catalog_items["g1"].pk])
    events(consenting_subject, catalog_items["b1"])
    request = RequestFactory().get("/", HTTP_SEC_GPC="1")
    request.user = consenting_subject.user or __import__(
        "django.contrib.auth.models", fromlist=["AnonymousUser"]).AnonymousUser()
    recs = recommend(request, "home", limit=2)
    assert not any(r.personalized for r in recs)
    assert FakeStrategy.calls == []


def test_already_bought_items_and_unavailable_ones_are_filtered(
    catalog_items, active_models, consenting_subject
):
    c = catalog_items
    events(consenting_subject, c["b1"], "purchase")
    events(consenting_subject, c["b2"], "view")
    # the fake strategy returns whatever it is given minus history/exclude;
    # b1 is excluded as bought, t6 is unavailable
    active_models["item_knn"] = make_model(
        "item_knn", [c["t6"].pk, c["b3"].pk, c["b4"].pk], cold=True
    )
    recs = recommend(consenting_subject, "home", limit=2)
    assert ext(recs) == ["b3", "b4"]
    call = next(args for name, args in FakeStrategy.calls if name == "recommend")
    assert c["b1"].pk in call[2]


def test_seen_items_are_excluded_when_configured_with_a_window(
    catalog_items, active_models, consenting_subject
):
    c = catalog_items
    Placement.objects.create(name="home", filters={
        "exclude_event_types": ["view"], "exclude_window_days": 7})
    Event.objects.create(subject=consenting_subject, item=c["b2"], event_type="view")
    Event.objects.create(subject=consenting_subject, item=c["b3"], event_type="view",
                         timestamp=timezone.now() - timedelta(days=30))
    active_models["item_knn"] = make_model("item_knn", [c["b2"].pk, c["b3"].pk], cold=True)
    # b2 seen this week: excluded; b3 seen a month ago: outside the window, but
    # the strategy contract drops history items anyway, so the block falls back
    recs = recommend(consenting_subject, "home", limit=1)
    call = next(args for name, args in FakeStrategy.calls if name == "recommend")
    assert c["b2"].pk in call[2] and c["b3"].pk not in call[2]
    assert ext(recs) != ["b2"]


def test_category_include_exclude_pinned_and_blocked(catalog_items, crowd, active_models):
    Placement.objects.create(name="tools", filters={
        "include_categories": ["Tools"], "pinned": ["t5", "b1", "nope"], "blocked": ["t2"]})
    recs = recommend(None, "tools", limit=4)
    # b1 is pinned but outside the included categories; t2 is blocked
    assert ext(recs) == ["t5", "t1", "t3", "t4"]
    assert recs[0].strategy == "pinned" and recs[0].explanation == "Featured"
    Placement.objects.create(name="no-tools", filters={"exclude_categories": ["Tools"]})
    assert not {"t1", "t2"} & set(ext(recommend(None, "no-tools", limit=8)))


def test_current_item_is_excluded_and_its_category_preferred(crowd, active_models):
    recs = recommend(None, "home", limit=3, context={"item": crowd["b4"]})
    assert "b4" not in ext(recs)
    # popular in the page's category (Books) first, then globally popular
    assert ext(recs) == ["b1", "b2", "t1"]
    assert recs[0].explanation == "Popular in Books"
    by_external_id = recommend(None, "home", limit=3, context={"item": "b4"})
    assert ext(by_external_id) == ext(recs)


def test_fallback_fills_from_the_preferred_category(
    catalog_items, crowd, active_models, consenting_subject
):
    c = catalog_items
    events(consenting_subject, c["b5"], "view", n=3)
    active_models["item_knn"] = make_model("item_knn", [c["t4"].pk])
    recs = recommend(consenting_subject, "home", limit=4)
    # then popular in Books (the subject's favourite category; b5 itself is in
    # their history, so it is skipped) before the globally popular t1
    assert ext(recs) == ["t4", "b1", "b2", "t1"]
    assert recs[1].explanation == "Popular in Books" and recs[1].personalized
    assert recs[3].explanation == "Popular in Tools" and not recs[3].personalized


def test_a_failing_strategy_falls_back_and_is_logged(
    catalog_items, crowd, active_models, consenting_subject, caplog
):
    events(consenting_subject, catalog_items["b5"])
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b4"].pk], boom=True)
    with caplog.at_level(logging.ERROR, logger="personalize.serving.service"):
        recs = recommend(consenting_subject, "home", limit=2)
    assert len(recs) == 2 and not any(r.strategy == "item_knn" for r in recs)
    assert "strategy bug" in caplog.text


def test_a_blend_whose_part_raises_is_logged_once_and_the_fallback_answers(
    catalog_items, crowd, active_models, consenting_subject, caplog, monkeypatch
):
    c = catalog_items
    baskets = [["b1", "b2"], ["b1", "b2", "b3"], ["b2", "b3"], ["t1", "t2"]]
    subjects = [n for n, basket in enumerate(baskets) for _ in basket]
    items = [c[name].pk for basket in baskets for name in basket]
    blend = Blend(strategies={"ease": 0.5, "item_knn": 0.5})
    with override_settings(PERSONALIZE={"STRATEGIES": DEFAULTS["STRATEGIES"]}):
        artifact = blend.fit(Dataset.from_arrays(subjects, items, "purchase"))
    active_models["blend"] = ActiveModel(name="blend", version=3, strategy=blend,
                                         artifact=artifact)
    active_models["trending"] = make_model("trending", [c["g1"].pk, c["b4"].pk], cold=True)
    Placement.objects.create(name="home", strategy="blend", fallback="trending")

    def broken(self, artifact, history):
        raise ZeroDivisionError("part bug")

    monkeypatch.setattr(EASE, "item_scores", broken)  # a bug in one part, not CannotRecommend
    events(consenting_subject, c["b1"], "purchase")
    with caplog.at_level(logging.ERROR):
        recs = recommend(consenting_subject, "home", limit=2)
    assert [r.strategy for r in recs] == ["trending", "trending"]
    assert ext(recs) == ["g1", "b4"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert errors[0].getMessage() == "Strategy 'blend' v3 failed in recommend()"
    assert errors[0].exc_info is not None and "part bug" in caplog.text  # with the traceback


def test_fallback_strategy_runs_before_popularity(catalog_items, crowd, active_models):
    Placement.objects.create(name="home", fallback="trending")
    active_models["trending"] = make_model("trending", [crowd["g1"].pk], cold=True)
    recs = recommend(None, "home", limit=2)
    assert ext(recs) == ["g1", "t1"]
    assert recs[0].strategy == "trending" and recs[0].explanation == "Popular right now"


def test_popularity_comes_from_the_active_popular_model(catalog_items, active_models):
    c = catalog_items
    active_models["popular"] = make_model("popular", [c["b6"].pk, c["g1"].pk], cold=True)
    assert ext(recommend(None, "home", limit=2)) == ["b6", "g1"]


def test_unknown_placement_uses_defaults_and_warns_once(crowd, active_models, caplog):
    with caplog.at_level(logging.WARNING, logger="personalize.serving.placements"):
        first = recommend(None, "sidebar")
        recommend(None, "sidebar", limit=3)
    assert len(first) == 8  # DEFAULT_LIMIT
    assert caplog.text.count("Unknown placement 'sidebar'") == 1


def test_disabled_placement_shows_nothing(crowd, active_models):
    Placement.objects.create(name="home", enabled=False)
    assert recommend(None, "home") == []


def test_limit_is_clamped_to_max_limit(crowd, active_models, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "MAX_LIMIT": 3}
    assert len(recommend(None, "home", limit=50)) == 3


def test_diversity_interleaves_categories(catalog_items, active_models, consenting_subject):
    c = catalog_items
    events(consenting_subject, c["g1"])
    ranking = [c["b1"].pk, c["b2"].pk, c["b3"].pk, c["t1"].pk, c["t2"].pk]
    active_models["item_knn"] = make_model("item_knn", ranking)
    plain = recommend(consenting_subject, "home", limit=3)
    assert ext(plain) == ["b1", "b2", "b3"]
    Placement.objects.create(name="diverse", diversity=0.7)
    diverse = recommend(consenting_subject, "diverse", limit=3)
    assert ext(diverse) == ["b1", "t1", "b2"]
    stats = serving_stats()
    assert stats["diverse"]["mean_intra_list_diversity"] > stats["home"][
        "mean_intra_list_diversity"]


def test_a_cache_hit_runs_no_query(catalog_items, crowd, active_models, consenting_subject,
                                   django_assert_num_queries):
    events(consenting_subject, catalog_items["b1"])
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b3"].pk])
    first = recommend(consenting_subject, "home", limit=4)
    with django_assert_num_queries(0):
        second = recommend(consenting_subject, "home", limit=4)
    assert ext(first) == ext(second)
    assert [r.explanation for r in first] == [r.explanation for r in second]
    assert serving_stats()["home"]["cache_hits"] == 1


def test_rows_carry_what_the_api_shows_and_a_hit_loads_no_item(
    catalog_items, crowd, active_models, consenting_subject, django_assert_num_queries
):
    from personalize.serving import catalog

    events(consenting_subject, catalog_items["b1"])
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b3"].pk])
    recs = recommend(consenting_subject, "home", limit=3)
    rows = service.recommend_rows(consenting_subject, "home", limit=3)
    assert [(r.pk, r.external_id, r.title, r.categories, r.url, r.score, r.strategy,
             r.personalized, r.explanation) for r in rows] == [
        (r.item.pk, r.item.external_id, r.item.title, r.item.categories, r.url, r.score,
         r.strategy, r.personalized, r.explanation) for r in recs]
    catalog.clear()  # forget the item rows this process keeps
    with django_assert_num_queries(0):
        assert service.recommend_rows(consenting_subject, "home", limit=3) == rows
    similar = service.similar_rows(catalog_items["b1"], limit=2)
    assert [r.external_id for r in similar] == ext(similar_items(catalog_items["b1"], limit=2))


def test_recommendations_carry_the_catalog_attributes_without_a_query_on_a_hit(
    catalog_items, crowd, active_models, django_assert_num_queries
):
    from personalize.serving import catalog

    attributes = {"price": 19.99, "brand": "Acme", "image": "/media/t1.jpg"}
    Item.objects.filter(external_id="t1").update(attributes=attributes)
    recs = recommend(None, "home", limit=2)
    assert ext(recs) == ["t1", "t2"]
    assert recs[0].attributes == attributes and recs[1].attributes == {}
    recs[0].attributes["price"] = 0  # a caller's change stays its own
    assert recs[0].item.attributes == attributes
    catalog.clear()  # forget the item rows this process keeps
    with django_assert_num_queries(0):
        rows = service.recommend_rows(None, "home", limit=2)
    assert rows[0].attributes == attributes


def test_a_miss_reads_consent_in_the_same_round_trip(
    catalog_items, active_models, consenting_subject, monkeypatch
):
    from django.core.cache import caches

    from personalize.consent.cache import consent_cache_key

    events(consenting_subject, catalog_items["b1"])
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b3"].pk])
    assert recommend(consenting_subject, "home", limit=2)[0].personalized  # caches the consent
    cache_class = type(caches["default"])
    reads: list[tuple[str, list[str]]] = []
    depth = [0]

    def spying(name):
        real = getattr(cache_class, name)

        def spy(self, keys, *args, **kwargs):
            if not depth[0]:  # a get_many of the local-memory cache calls get itself
                reads.append((name, list(keys) if name == "get_many" else [keys]))
            depth[0] += 1
            try:
                return real(self, keys, *args, **kwargs)
            finally:
                depth[0] -= 1
        return spy

    for name in ("get", "get_many"):
        monkeypatch.setattr(cache_class, name, spying(name))
    service.block_cache.bump_subjects([consenting_subject.pk])
    recs = recommend(consenting_subject, "home", limit=2)
    assert recs[0].personalized and recs[0].strategy == "item_knn"
    consent_key = consent_cache_key(consenting_subject.pk)
    assert [name for name, keys in reads if consent_key in keys] == ["get_many"]
    assert service.block_cache.GLOBAL_GEN_KEY in reads[0][1] and consent_key in reads[0][1]


def test_an_entry_that_is_not_a_block_entry_is_recomputed(crowd, active_models):
    first = recommend(None, "home", limit=2)
    key = service.block_cache.block_key("home", None, 2, None, "en-us")
    assert f":v{service.block_cache.ENTRY_FORMAT}:" in key  # another layout, other keys
    cache = personalize_cache()
    entry = cache.get(key)
    assert isinstance(entry, service.BlockEntry)
    cache.set(key, tuple(vars(entry).values()))  # what an older release might have left
    again = recommend(None, "home", limit=2)
    assert ext(again) == ext(first)
    assert serving_stats()["home"]["computed"] == 2


def test_url_comes_from_the_item_attributes(db, active_models):
    Item.objects.create(external_id="u1", title="U", attributes={"url": "/u1/"})
    assert recommend(None, "home")[0].url == "/u1/"


def test_similar_items_use_the_strategy_then_the_category(catalog_items, crowd, active_models):
    c = catalog_items
    active_models["item_knn"] = make_model(
        "item_knn", [], similar={c["b1"].pk: [c["b4"].pk, c["t6"].pk]})
    recs = similar_items(c["b1"], limit=3)
    # t6 is unavailable; then popular in Books (only b2 has events), then global
    assert ext(recs) == ["b4", "b2", "t1"]
    assert recs[0].explanation == "Similar to Book 1"
    assert not any(r.personalized for r in recs)
    assert "b1" not in ext(similar_items("b1", limit=12))


def test_similar_items_with_an_explicit_strategy_and_placement(catalog_items, active_models):
    c = catalog_items
    active_models["embeddings"] = make_model(
        "embeddings", [], similar={c["t1"].pk: [c["t3"].pk, c["b2"].pk]})
    Placement.objects.create(name="pdp", filters={"include_categories": ["Tools"]})
    recs = similar_items(c["t1"], limit=2, strategy="embeddings", placement="pdp")
    assert ext(recs)[0] == "t3" and "b2" not in ext(recs)
    assert recs[0].strategy == "embeddings"


def test_similar_items_accepts_a_host_object(db, active_models):
    from tests.testapp.models import Category, Product

    tools = Category.objects.create(name="Tools")
    saw = Product.objects.create(name="Saw", category=tools)
    Product.objects.create(name="Hammer", category=tools)
    recs = similar_items(saw, limit=5)
    assert [r.item.title for r in recs] == ["Hammer"]


def test_preview_reports_every_stage(catalog_items, crowd, active_models, consenting_subject):
    events(consenting_subject, catalog_items["b5"])
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b6"].pk])
    recs, trace, config = service.preview(consenting_subject, "home", limit=3)
    assert trace.consent is True and config.name == "home"
    assert [s["stage"] for s in trace.stages][:2] == ["item_knn", "popular in Books"]
    assert ext(recs)[0] == "b6"


def test_merged_subjects_resolve_to_the_survivor(catalog_items, active_models):
    user_subject = Subject.objects.create()
    grant(user_subject)
    anon = Subject.objects.create(merged_into=user_subject)
    events(user_subject, catalog_items["b1"])
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b2"].pk])
    assert recommend(anon, "home", limit=1)[0].personalized


def test_a_stage_is_explained_in_one_explain_many_call(
    catalog_items, active_models, consenting_subject, monkeypatch
):
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [c["b3"].pk, c["b2"].pk, c["t1"].pk])
    events(consenting_subject, c["b1"], "view")
    asked: list[list[int]] = []
    original = FakeStrategy.explain_many

    def counting(self, artifact, history, item_ids):
        asked.append(list(item_ids))
        return original(self, artifact, history, item_ids)

    monkeypatch.setattr(FakeStrategy, "explain_many", counting)
    recs = recommend(consenting_subject, "home", limit=3)
    assert asked == [[c["b3"].pk, c["b2"].pk, c["t1"].pk]]
    assert [r.explanation for r in recs] == ["Because you viewed Book 1"] * 3


@pytest.mark.parametrize("broken", ["raises", "short"])
def test_a_failing_explain_many_falls_back_to_explain_per_item(
    catalog_items, active_models, consenting_subject, monkeypatch, broken
):
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [c["b3"].pk, c["b2"].pk])
    events(consenting_subject, c["b1"], "view")

    def explain_many(self, artifact, history, item_ids):
        if broken == "raises":
            raise RuntimeError("batch bug")
        return [None]  # fewer answers than items

    def explain(self, artifact, history, item_id):
        if item_id == c["b2"].pk:
            raise RuntimeError("item bug")
        return history.item_ids[-1]

    monkeypatch.setattr(FakeStrategy, "explain_many", explain_many)
    monkeypatch.setattr(FakeStrategy, "explain", explain)
    recs = recommend(consenting_subject, "home", limit=2)
    assert ext(recs) == ["b3", "b2"]
    # the failing item alone loses its reason
    assert [r.explanation for r in recs] == ["Because you viewed Book 1", "Recommended for you"]
