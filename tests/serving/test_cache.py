"""The block cache: hits, generation-based invalidation, and a cache that is down.

Runs against the local-memory cache, and against the real Redis server when
``PERSONALIZE_TEST_SERVICES=1`` (the test settings then point the default
alias at Redis).
"""

from __future__ import annotations

import logging
import os
import socket
import time

import pytest
from django.core.cache import caches

from personalize.backends.cache import list_keys
from personalize.consent.cache import delete_subject_keys, subject_key_patterns
from personalize.models import Event, Item, Placement, Subject
from personalize.serving import cache as block_cache
from personalize.serving.service import recommend, similar_items
from personalize.signals import event_recorded, items_changed, model_activated, subject_erased
from personalize.tracking.service import track
from tests.servers import hung_server
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import FakeStrategy, grant, make_model

pytestmark = pytest.mark.django_db
SERVICES = os.environ.get("PERSONALIZE_TEST_SERVICES") == "1"


def ext(recs) -> list[str]:
    return [r.item.external_id for r in recs]


def strategy_calls() -> int:
    return sum(1 for name, _ in FakeStrategy.calls if name == "recommend")


@pytest.fixture
def knn(catalog_items, active_models, consenting_subject):
    Event.objects.create(subject=consenting_subject, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model(
        "item_knn", [catalog_items[k].pk for k in ("b2", "b3", "b4", "t1")])
    return active_models["item_knn"]


def test_keys_carry_the_subject_token_and_placement():
    assert block_cache.block_key("home", 42, 8, None, "en") == \
        "personalize:rec:v4:subject:42:home:8:-:en"
    assert block_cache.block_key("home", None, None, 7, None) == \
        "personalize:rec:v4:anon:home:d:7:-"
    assert block_cache.subject_gen_key(42) == "personalize:rec:gen:subject:42"


def test_second_call_is_a_hit(knn, consenting_subject):
    first = recommend(consenting_subject, "home", limit=3)
    second = recommend(consenting_subject, "home", limit=3)
    assert ext(first) == ext(second) == ["b2", "b3", "b4"]
    assert strategy_calls() == 1


def test_limit_and_context_have_their_own_entries(knn, consenting_subject, catalog_items):
    recommend(consenting_subject, "home", limit=3)
    recommend(consenting_subject, "home", limit=2)
    recommend(consenting_subject, "home", limit=3, context={"item": catalog_items["b2"]})
    assert strategy_calls() == 3


def test_event_recorded_invalidates_only_that_subjects_blocks(
    knn, consenting_subject, catalog_items
):
    other = Subject.objects.create()
    grant(other)
    Event.objects.create(subject=other, item=catalog_items["t2"], event_type="view")
    recommend(consenting_subject, "home", limit=3)
    recommend(other, "home", limit=3)
    assert strategy_calls() == 2
    Event.objects.create(subject=consenting_subject, item=catalog_items["b2"], event_type="view")
    event_recorded.send(sender=Event, subject_ids={consenting_subject.pk},
                        item_ids={catalog_items["b2"].pk}, count=1)
    fresh = recommend(consenting_subject, "home", limit=3)
    recommend(other, "home", limit=3)
    assert strategy_calls() == 3  # only the subject who acted was recomputed
    assert "b2" not in ext(fresh)  # now in their history


def test_track_invalidates_through_the_real_signal(
    knn, consenting_subject, catalog_items, django_capture_on_commit_callbacks
):
    from personalize import track

    recommend(consenting_subject, "home", limit=3)
    with django_capture_on_commit_callbacks(execute=True):
        track(consenting_subject, "view", catalog_items["b3"])
    assert "b3" not in ext(recommend(consenting_subject, "home", limit=3))


@pytest.mark.parametrize("send", [
    lambda: items_changed.send(sender=Item, item_ids=[]),
    lambda: model_activated.send(sender=None, strategy="item_knn", version=2),
])
def test_catalog_and_model_changes_invalidate_everyone(
    knn, consenting_subject, send, django_capture_on_commit_callbacks
):
    recommend(consenting_subject, "home", limit=3)
    recommend(None, "home", limit=3)
    with django_capture_on_commit_callbacks(execute=True):
        send()
    recommend(consenting_subject, "home", limit=3)
    assert strategy_calls() == 2


def test_saving_an_item_invalidates_once_per_transaction(
    crowd_free_catalog, django_capture_on_commit_callbacks, monkeypatch
):
    bumps = []
    monkeypatch.setattr(block_cache, "bump_global", lambda: bumps.append(1))
    before = ext(recommend(None, "home", limit=20))
    with django_capture_on_commit_callbacks(execute=True):
        for item in Item.objects.all()[:5]:
            item.save()
    assert len(bumps) == 1
    assert before


@pytest.fixture
def crowd_free_catalog(catalog_items, active_models):
    return catalog_items


def test_item_changes_show_after_commit(
    catalog_items, active_models, django_capture_on_commit_callbacks
):
    assert "b1" in ext(recommend(None, "home", limit=20))
    with django_capture_on_commit_callbacks(execute=True):
        Item.objects.filter(external_id="b1").first().delete()
        Item.objects.create(external_id="n1", title="New", categories=["Books"])
    after = ext(recommend(None, "home", limit=20))
    assert "b1" not in after and "n1" in after


def test_placement_edits_apply_at_once(
    catalog_items, active_models, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        placement = Placement.objects.create(name="home", limit=2)
    assert len(recommend(None, "home")) == 2
    with django_capture_on_commit_callbacks(execute=True):
        placement.limit = 4
        placement.save()
    assert len(recommend(None, "home")) == 4


def test_consent_change_invalidates_the_subject(
    catalog_items, active_models, django_capture_on_commit_callbacks
):
    from personalize import grant_consent

    subject = Subject.objects.create()
    Event.objects.create(subject=subject, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["b4"].pk])
    assert not recommend(subject, "home", limit=1)[0].personalized
    with django_capture_on_commit_callbacks(execute=True):
        grant_consent(subject)
    assert recommend(subject, "home", limit=1)[0].personalized


def test_erasure_invalidates_and_removes_the_subjects_keys(knn, consenting_subject):
    recommend(consenting_subject, "home", limit=3)
    keys = list_keys(subject_key_patterns(consenting_subject.pk))
    assert keys is None or any(":home:" in k for k in keys)
    subject_erased.send(sender=Subject, subject_id=consenting_subject.pk,
                        key=consenting_subject.key)
    recommend(consenting_subject, "home", limit=3)
    assert strategy_calls() == 2
    if keys is not None:
        delete_subject_keys(consenting_subject.pk, consenting_subject.key)
        assert list_keys(subject_key_patterns(consenting_subject.pk)) == []


def test_a_new_model_version_is_not_served_from_old_entries(knn, consenting_subject,
                                                            active_models, catalog_items):
    recommend(consenting_subject, "home", limit=1)
    active_models["item_knn"] = make_model("item_knn", [catalog_items["t3"].pk], version=2)
    assert ext(recommend(consenting_subject, "home", limit=1)) == ["t3"]


def test_flushed_cache_reinitialises_the_generation(knn, consenting_subject):
    recommend(consenting_subject, "home", limit=3)
    caches["default"].clear()
    recommend(consenting_subject, "home", limit=3)
    recommend(consenting_subject, "home", limit=3)
    assert strategy_calls() == 2
    assert caches["default"].get(block_cache.GLOBAL_GEN_KEY)


def test_similar_items_are_cached_and_invalidated(
    catalog_items, active_models, django_capture_on_commit_callbacks
):
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [], similar={c["b1"].pk: [c["b2"].pk]})
    similar_items(c["b1"], limit=2)
    similar_items(c["b1"], limit=2)
    assert sum(1 for name, _ in FakeStrategy.calls if name == "similar") == 1
    with django_capture_on_commit_callbacks(execute=True):
        model_activated.send(sender=None, strategy="item_knn", version=2)
    similar_items(c["b1"], limit=2)
    assert sum(1 for name, _ in FakeStrategy.calls if name == "similar") == 2


def test_ttl_zero_disables_caching(knn, consenting_subject):
    Placement.objects.create(name="live", cache_ttl=0)
    recommend(consenting_subject, "live", limit=2)
    recommend(consenting_subject, "live", limit=2)
    assert strategy_calls() == 2


# --- the cache is down -------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {
        **settings.CACHES,
        "down": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        },
    }
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CACHE_ALIAS": "down"}
    yield


def test_unreachable_cache_computes_directly_and_warns(knn, consenting_subject, redis_down,
                                                       caplog):
    with caplog.at_level(logging.WARNING):
        recs = recommend(consenting_subject, "home", limit=3)
        again = recommend(consenting_subject, "home", limit=3)
        anon = recommend(None, "home", limit=3)
    assert ext(recs) == ext(again) == ["b2", "b3", "b4"]
    assert len(anon) == 3
    assert strategy_calls() == 2
    assert any(r.name == "personalize.backends.cache" and r.levelno == logging.WARNING
               and "unreachable" in r.getMessage() for r in caplog.records)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


@pytest.fixture
def redis_hung(settings):
    """A Redis that accepts connections and never answers, with the socket timeouts docs ask for."""
    with hung_server() as port:
        settings.CACHES = {**settings.CACHES, "hung": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }}
        settings.PERSONALIZE = {**settings.PERSONALIZE, "CACHE_ALIAS": "hung"}
        yield


def _timed(call):
    started = time.perf_counter()
    return call(), time.perf_counter() - started


def test_a_hung_cache_costs_a_request_about_one_timeout(knn, catalog_items, consenting_subject,
                                                        redis_hung):
    recs, first = _timed(lambda: recommend(consenting_subject, "home", limit=3))
    assert ext(recs) == ["b2", "b3", "b4"]  # computed from the live model
    assert first < 0.2 * 3  # one timeout (0.2 s) and the computation, not one per cache call

    # the cache is left alone for CACHE_RETRY_INTERVAL seconds: no more waiting
    anon, elapsed = _timed(lambda: recommend(None, "home", limit=3))
    assert len(anon) == 3 and elapsed < 0.15  # the popular fallback
    event, elapsed = _timed(lambda: track(consenting_subject, "view", item=catalog_items["t2"]))
    assert event is not None and elapsed < 0.15  # stored in the database all the same


def test_a_hung_cache_costs_a_tracking_call_about_one_timeout(catalog_items, consenting_subject,
                                                              redis_hung):
    event, elapsed = _timed(lambda: track(consenting_subject, "view", item=catalog_items["t2"]))
    assert Event.objects.filter(pk=event.pk).exists()
    assert elapsed < 0.2 * 3


def test_unreachable_cache_for_similar_items_and_invalidation(
    catalog_items, active_models, redis_down, caplog
):
    with caplog.at_level(logging.WARNING):
        assert len(similar_items(catalog_items["b1"], limit=3)) == 3
        block_cache.bump_global()
        block_cache.bump_subjects([1, 2])
    assert "unreachable" in caplog.text


def test_warnings_are_throttled(redis_down, caplog):
    with caplog.at_level(logging.WARNING, logger="personalize.serving.cache"):
        for _ in range(5):
            assert block_cache.read(["x"]) is None
    assert caplog.text.count("unreachable") == 1


# --- real Redis ---------------------------------------------------------------


@pytest.mark.services
@pytest.mark.skipif(not SERVICES, reason="needs PERSONALIZE_TEST_SERVICES=1 (real Redis)")
def test_blocks_live_in_real_redis(knn, consenting_subject):
    cache = caches["default"]
    assert "redis" in type(cache).__module__
    recommend(consenting_subject, "home", limit=3)
    keys = list_keys(subject_key_patterns(consenting_subject.pk))
    assert any(k.startswith("personalize:rec:v4:subject:") for k in keys)
    assert cache.ttl(next(k for k in keys if ":home:" in k)) <= 300
    subject_erased.send(sender=Subject, subject_id=consenting_subject.pk,
                        key=consenting_subject.key)
    recommend(consenting_subject, "home", limit=3)
    assert strategy_calls() == 2
