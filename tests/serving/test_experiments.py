"""A placement that runs an experiment: each subject is served their variant."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from personalize.backends.cache import personalize_cache
from personalize.experiments.assignment import assignment_key
from personalize.models import Assignment, Event, Experiment, Placement, Subject, Variant
from personalize.serving import cache as block_cache
from personalize.serving.service import materialise, recommend, serve_block
from personalize.serving.stats import serving_stats
from tests.experiments.factories import grant_analytics, make_experiment, variant
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import grant, make_model

pytestmark = pytest.mark.django_db


def request_of(subject: Subject, **headers):
    """A request whose visitor cookie stands for ``subject``."""
    from django.contrib.auth.models import AnonymousUser

    from personalize.identity import STATE_ATTR, VisitorState

    request = RequestFactory().get("/", **headers)
    request.user = AnonymousUser()
    state = VisitorState(request)
    state._anon_looked_up, state._anon_subject = True, subject
    setattr(request, STATE_ATTR, state)
    return request


def ext(served) -> list[str]:
    return [r.external_id for r in served.rows]


@pytest.fixture
def shopper(catalog_items, active_models):
    """A subject with both consents, a history, and two trained strategies."""
    c = catalog_items
    subject = Subject.objects.create(visitor_id="shopper")
    grant(subject)
    grant_analytics(subject)
    Event.objects.create(subject=subject, item=c["g1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [c["b3"].pk, c["b2"].pk], version=4)
    active_models["ease"] = make_model("ease", [c["t1"].pk, c["t2"].pk], version=7)
    return subject


def only(key: str, **extra) -> list[dict]:
    """Variants a (control, item_knn) and b (ease), everyone new in ``key``."""
    return [{"key": "a", "strategy": "item_knn", "weight": float(key == "a"), **extra},
            {"key": "b", "strategy": "ease", "weight": float(key == "b")}]


def test_a_subject_is_served_the_strategy_of_their_variant(shopper):
    experiment = make_experiment("home", only("b"))
    served = serve_block(shopper, "home", limit=2)
    assert ext(served) == ["t1", "t2"]
    assert (served.strategy, served.model_version) == ("ease", 7)
    assert (served.experiment_id, served.variant_id) == (
        experiment.pk, variant(experiment, "b").pk)
    assert served.analytics and served.exposable and not served.assignment_recorded
    assert all(r.strategy == "ease" and r.personalized for r in served.rows)


def test_without_an_experiment_the_placement_serves_as_before(shopper):
    served = serve_block(shopper, "home", limit=2)
    assert ext(served) == ["b3", "b2"]
    assert (served.strategy, served.model_version) == ("item_knn", 4)
    assert (served.experiment_id, served.variant_id) == (None, None)


def test_no_analytics_consent_means_the_control_and_no_enrolment(catalog_items, shopper):
    make_experiment("home", only("b"))
    other = Subject.objects.create(visitor_id="private")
    grant(other)  # personalization only
    Event.objects.create(subject=other, item=catalog_items["g1"], event_type="view")
    served = serve_block(other, "home", limit=2)
    assert ext(served) == ["b3", "b2"]  # the control: item_knn
    assert (served.experiment_id, served.variant_id, served.exposable) == (None, None, False)
    assert not Assignment.objects.exists()
    # a GPC signal counts as no consent at all: the shared block, the control's
    assert serve_block(request_of(shopper), "home", limit=2).experiment_id is not None
    gpc = serve_block(request_of(shopper, HTTP_SEC_GPC="1"), "home", limit=2)
    assert (gpc.subject_id, gpc.experiment_id, gpc.strategy) == (None, None, "item_knn")
    anonymous = serve_block(None, "home", limit=2)
    assert (anonymous.subject_id, anonymous.experiment_id, anonymous.exposable) == (
        None, None, False)
    assert anonymous.strategy == "item_knn"  # the control's configuration


def test_the_assignment_is_read_back_and_sticks(shopper):
    experiment = make_experiment("home", only("b"))
    Assignment.objects.create(experiment=experiment, subject=shopper,
                              variant=variant(experiment, "a"))
    served = serve_block(shopper, "home", limit=2)
    assert ext(served) == ["b3", "b2"] and served.assignment_recorded
    assert served.variant_id == variant(experiment, "a").pk
    # cached with the block: the next request reads it in the same round trip
    key = assignment_key(experiment.pk, shopper.pk)
    assert personalize_cache().get(key) == variant(experiment, "a").pk


def test_each_variant_has_its_own_cached_block(shopper):
    experiment = make_experiment("home", only("a"))
    a, b = variant(experiment, "a"), variant(experiment, "b")
    assert ext(serve_block(shopper, "home", limit=2)) == ["b3", "b2"]
    key_a = block_cache.block_key("home", shopper.pk, 2, None, "en-us", a.pk)
    assert isinstance(personalize_cache().get(key_a), block_cache.BlockEntry)
    assert ext(serve_block(shopper, "home", limit=2)) == ["b3", "b2"]
    assert serving_stats()["home"]["cache_hits"] == 1
    # the subject's recorded variant becomes b (a merge kept another subject's)
    personalize_cache().set(assignment_key(experiment.pk, shopper.pk), b.pk)
    served = serve_block(shopper, "home", limit=2)
    assert ext(served) == ["t1", "t2"] and served.variant_id == b.pk
    assert serving_stats()["home"]["computed"] == 2  # not a's entry
    key_b = block_cache.block_key("home", shopper.pk, 2, None, "en-us", b.pk)
    assert key_b != key_a and isinstance(personalize_cache().get(key_b), block_cache.BlockEntry)


def test_a_config_variant_overrides_the_placement(catalog_items, shopper):
    Placement.objects.create(name="home", strategy="item_knn", limit=6)
    make_experiment("home", [
        {"key": "a", "strategy": "item_knn", "weight": 0},
        {"key": "b", "kind": Variant.Kind.CONFIG, "weight": 1, "config": {
            "strategy": "ease", "limit": 3, "diversity": 0.0,
            "filters": {"include_categories": ["Tools"]}}},
    ])
    served = serve_block(shopper, "home")
    assert len(served.rows) == 3  # the variant's limit
    assert ext(served)[:2] == ["t1", "t2"] and served.strategy == "ease"
    assert all("Tools" in r.categories for r in served.rows)  # the variant's filters


def test_the_popular_variant_serves_the_popularity_baseline(catalog_items, shopper):
    c = catalog_items
    for person in (Subject.objects.create() for _ in range(2)):
        Event.objects.create(subject=person, item=c["t4"], event_type="purchase")
    make_experiment("home", [{"key": "a", "strategy": "item_knn", "weight": 0},
                             {"key": "b", "kind": Variant.Kind.POPULAR, "weight": 1}])
    served = serve_block(shopper, "home", limit=2)
    assert served.strategy == "popular" and ext(served)[0] == "t4"
    assert served.model_version is None  # no trained popular model: counted from events


def test_a_holdout_gets_an_empty_block_that_still_counts(shopper,
                                                        django_capture_on_commit_callbacks):
    experiment = make_experiment("home", [
        {"key": "none", "kind": Variant.Kind.HOLDOUT, "weight": 1, "is_control": True},
        {"key": "b", "strategy": "ease", "weight": 0}])
    served = serve_block(shopper, "home", limit=2)
    assert served.rows == [] and served.holdout and served.exposable
    assert (served.strategy, served.variant_id) == ("", variant(experiment, "none").pk)
    assert materialise(served) == [] and recommend(shopper, "home") == []
    with django_capture_on_commit_callbacks(execute=True):  # moves the generation
        Placement.objects.create(name="home", enabled=False)
    disabled = serve_block(shopper, "home", limit=2)
    assert disabled.rows == [] and not disabled.holdout and not disabled.exposable


def test_editing_the_experiment_takes_effect_at_once(shopper,
                                                     django_capture_on_commit_callbacks):
    assert ext(serve_block(shopper, "home", limit=2)) == ["b3", "b2"]
    with django_capture_on_commit_callbacks(execute=True):  # moves the serving generation
        experiment = make_experiment("home", only("b"))
    assert ext(serve_block(shopper, "home", limit=2)) == ["t1", "t2"]
    with django_capture_on_commit_callbacks(execute=True):
        Variant.objects.get(pk=variant(experiment, "b").pk).save()
    assert ext(serve_block(shopper, "home", limit=2)) == ["t1", "t2"]  # sticky
    with django_capture_on_commit_callbacks(execute=True):
        experiment.status = Experiment.Status.STOPPED
        experiment.save()
    served = serve_block(shopper, "home", limit=2)
    assert ext(served) == ["b3", "b2"] and served.experiment_id is None


def test_a_cache_hit_runs_no_query_with_or_without_an_experiment(
        shopper, django_assert_num_queries, django_capture_on_commit_callbacks):
    serve_block(shopper, "home", limit=2)
    with django_assert_num_queries(0):
        assert ext(serve_block(shopper, "home", limit=2)) == ["b3", "b2"]
    with django_capture_on_commit_callbacks(execute=True):
        experiment = make_experiment("home", only("b"))
    personalize_cache().set(assignment_key(experiment.pk, shopper.pk),
                            variant(experiment, "b").pk)
    serve_block(shopper, "home", limit=2)  # this process reads the experiment once
    with django_assert_num_queries(0):
        served = serve_block(shopper, "home", limit=2)
    assert ext(served) == ["t1", "t2"] and served.variant_id == variant(experiment, "b").pk


def test_a_fallback_only_block_has_no_model_version(catalog_items, active_models):
    subject = Subject.objects.create()
    grant_analytics(subject)  # analytics, but no personalization: popular items only
    served = serve_block(subject, "home", limit=2)
    assert served.rows and served.strategy == "item_knn" and served.model_version is None
    assert served.exposable
