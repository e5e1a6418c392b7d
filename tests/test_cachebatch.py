"""CacheBatch: the event receivers' cache writes, sent together."""

from __future__ import annotations

import logging
import os
import socket
import time
from unittest import mock

import pytest
from django.core.cache import caches

from personalize.cachebatch import CacheBatch

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
    with caplog.at_level(logging.WARNING, logger="personalize.cachebatch"):
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
