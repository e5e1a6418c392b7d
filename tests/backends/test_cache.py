"""The cache seam: reads that treat a failure as a miss, batched writes, key listing."""

from __future__ import annotations

import logging
import os
import socket
import time
from unittest import mock

import pytest
from django.core.cache import caches

from personalize.backends.cache import (
    CacheBatch,
    CacheUnavailable,
    list_keys,
    personalize_cache,
    read_many,
    reset_warning_throttle,
)
from tests.servers import hung_server

SERVICES = os.environ.get("PERSONALIZE_TEST_SERVICES") == "1"


@pytest.fixture
def cache():
    cache = caches["default"]
    cache.clear()
    yield cache
    cache.clear()


def test_sets_and_increments_arrive(cache):
    cache.set("counter", 5, timeout=None)
    batch = CacheBatch(cache)
    batch.set_many({"a": "one", "b": {"nested": [1, 2]}}, timeout=60)
    batch.set_many({"a": "two"}, timeout=60)  # the last write of a key wins
    batch.incr("counter", 2)
    batch.incr("counter", 3)
    batch.incr("fresh", 4)  # a missing counter starts at the delta
    assert len(batch) == 4
    assert batch.send() is True
    assert len(batch) == 0
    assert cache.get_many(["a", "b", "counter", "fresh"]) == {
        "a": "two", "b": {"nested": [1, 2]}, "counter": 10, "fresh": 4,
    }
    # and the counters stay counters for Django's own incr
    assert cache.incr("fresh", 1) == 5


def test_timeouts_are_kept(cache):
    batch = CacheBatch(cache)
    batch.set_many({"short": 1}, timeout=0.01)
    batch.set_many({"long": 2}, timeout=600)
    batch.send()
    time.sleep(0.05)
    assert cache.get("short") is None
    assert cache.get("long") == 2


def test_an_empty_batch_sends_nothing(cache):
    with mock.patch.object(cache, "set_many") as set_many:
        assert CacheBatch(cache).send() is True
    set_many.assert_not_called()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_cache_is_logged_not_raised(settings, caplog):
    settings.CACHES = {**settings.CACHES, "down": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }}
    batch = CacheBatch(caches["down"])
    batch.set_many({"a": 1}, timeout=60)
    batch.incr("n", 1)
    with caplog.at_level(logging.WARNING, logger="personalize.backends.cache"):
        assert batch.send() is False
    assert "Cannot write 2 value(s) to the cache" in caplog.text
    assert len(batch) == 0


@pytest.mark.services
@pytest.mark.skipif(not SERVICES, reason="needs PERSONALIZE_TEST_SERVICES=1 (real Redis)")
def test_one_round_trip_on_redis(cache):
    from redis.client import Pipeline, Redis

    batch = CacheBatch(cache)
    batch.set_many({"gen:1": "t1", "gen:2": "t2"}, timeout=60)
    batch.incr("events", 3)
    with mock.patch.object(Redis, "execute_command", autospec=True,
                           side_effect=Redis.execute_command) as single, \
            mock.patch.object(Pipeline, "execute", autospec=True,
                              side_effect=Pipeline.execute) as pipelined:
        assert batch.send() is True
    assert single.call_count == 0
    assert pipelined.call_count == 1
    assert cache.get_many(["gen:1", "gen:2", "events"]) == {
        "gen:1": "t1", "gen:2": "t2", "events": 3,
    }
    assert 0 < cache.ttl("gen:1") <= 60


def test_read_many_is_get_many(cache):
    cache.set_many({"a": 1, "b": [2]})
    assert read_many(["a", "b", "missing"]) == {"a": 1, "b": [2]}
    assert personalize_cache().backend is cache


def test_a_failed_read_is_a_miss_with_one_warning_per_interval(settings, caplog):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CACHE_ALIAS": "down"}
    settings.CACHES = {**settings.CACHES, "down": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }}
    reset_warning_throttle()
    with caplog.at_level(logging.WARNING, logger="personalize.backends.cache"):
        assert read_many(["a"], "doing it the slow way") is None
        assert read_many(["a"], "doing it the slow way") is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "unreachable" in warnings[0]
    assert warnings[0].endswith("doing it the slow way")


def test_a_cache_that_cannot_list_its_keys_says_so(cache):
    if SERVICES:
        pytest.skip("the services pass runs on Redis, which lists its keys")
    cache.set("personalize:x:subject:1", 1)
    assert list_keys(["*subject:1"], cache) is None


@pytest.mark.services
@pytest.mark.skipif(not SERVICES, reason="needs PERSONALIZE_TEST_SERVICES=1 (real Redis)")
def test_redis_lists_the_keys_matching_any_pattern(cache):
    cache.set_many({"personalize:x:subject:1": 1, "personalize:y:subject:1:home": 2,
                    "personalize:y:subject:12": 3})
    assert list_keys(["*subject:1", "*subject:1:*"], cache) == [
        "personalize:x:subject:1", "personalize:y:subject:1:home"]


# --- a cache that hangs ------------------------------------------------------


def _hung_cache(settings, port: int, retry_interval: float) -> None:
    settings.CACHES = {**settings.CACHES, "hung": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{port}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }}
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CACHE_ALIAS": "hung",
                            "CACHE_RETRY_INTERVAL": retry_interval}


def _timed(call):
    started = time.perf_counter()
    try:
        return call(), time.perf_counter() - started
    except CacheUnavailable as exc:
        return exc, time.perf_counter() - started


def test_a_hung_cache_costs_one_timeout_then_is_left_alone(settings):
    with hung_server() as port:
        _hung_cache(settings, port, retry_interval=1.5)
        cache = personalize_cache()

        failed, first = _timed(lambda: cache.get("a"))
        assert isinstance(failed, CacheUnavailable)
        assert str(failed).startswith("Cache 'hung' is unreachable (TimeoutError: Timeout ")
        assert 0.15 < first < 1.0  # the socket timeout, not forever

        # meanwhile every call fails at once: reads miss, writes are dropped
        for call in (lambda: cache.get("a"), lambda: cache.set("a", 1),
                     lambda: cache.add("a", 1), lambda: cache.get_many(["a", "b"])):
            result, elapsed = _timed(call)
            assert isinstance(result, CacheUnavailable) and elapsed < 0.05
        assert _timed(lambda: read_many(["a"]))[0] is None
        batch = CacheBatch()
        batch.incr("n")
        assert _timed(batch.send)[0] is False

        time.sleep(1.6)  # the interval is over: the cache is tried again
        result, again = _timed(lambda: cache.get("a"))
        assert isinstance(result, CacheUnavailable) and again > 0.15


def test_other_errors_do_not_make_the_cache_skipped(cache):
    shared = personalize_cache()
    with pytest.raises(ValueError):
        shared.incr("missing")  # Django's own "no such key"
    assert shared.available()
    shared.set("a", 1)
    assert shared.get("a") == 1


def test_no_retry_interval_tries_the_cache_on_every_call(settings):
    with hung_server() as port:
        _hung_cache(settings, port, retry_interval=0)
        cache = personalize_cache()
        for _ in range(2):
            result, elapsed = _timed(lambda: cache.get("a"))
            assert isinstance(result, CacheUnavailable) and elapsed > 0.15
