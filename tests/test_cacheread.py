"""cacheread.get_many: one lean MGET that answers exactly what cache.get_many does."""

from __future__ import annotations

import os
import socket
from unittest import mock

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import ConnectionError as RedisConnectionError

from personalize import cacheread

SERVICES = os.environ.get("PERSONALIZE_TEST_SERVICES") == "1"
needs_redis = pytest.mark.skipif(not SERVICES, reason="needs the real Redis (PERSONALIZE_TEST_SERVICES=1)")
REDIS_URL = os.environ.get("PERSONALIZE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")

VALUES = {
    "int": 42,
    "negative": -7,
    "text": "Élan ✓",
    "none": None,
    "nested": {"a": [1, 2.5, "x"], "b": (3, None)},
    "tuple": ("entry", 1, ("model", 2)),
    "big": 2**70,
}


def _redis_cache(settings, alias: str, version: int = 1, clear: bool = True, **options):
    settings.CACHES = {**settings.CACHES, alias: {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"cacheread-{alias}",
        "VERSION": version,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, **options},
    }}
    cache = caches[alias]
    if clear:
        cache.clear()
    return cache


@needs_redis
@pytest.mark.parametrize("options", [
    {},
    {"COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor"},
    {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
    {"PICKLE_VERSION": 1},  # no PROTO opcode: the long way
], ids=["pickle", "zlib", "json", "pickle-1"])
def test_same_answer_as_get_many(settings, options):
    cache = _redis_cache(settings, "lean", **options)
    values = dict(VALUES)
    cache.set_many(values, timeout=60)
    keys = [*values, "missing", "also-missing"]
    assert cacheread.get_many(cache, keys) == cache.get_many(keys)
    assert "missing" not in cacheread.get_many(cache, keys)
    assert cacheread.get_many(cache, keys)["none"] is None  # a stored None is found
    cache.clear()


@needs_redis
def test_counters_written_by_incr_read_back_as_integers(settings):
    cache = _redis_cache(settings, "counters")
    cache.set("n", 1, timeout=None)
    cache.incr("n", 4)
    assert cacheread.get_many(cache, ["n"]) == {"n": 5}
    cache.clear()


@needs_redis
def test_the_key_prefix_and_version_are_applied(settings):
    cache = _redis_cache(settings, "prefixed", version=3)
    cache.set("k", "v3")
    assert cacheread.get_many(cache, ["k"]) == {"k": "v3"}
    assert cache.client.get_client().get("cacheread-prefixed:3:k") is not None
    assert cacheread.get_many(_redis_cache(settings, "prefixed", version=2, clear=False),
                              ["k"]) == {}
    cache.clear()


@needs_redis
def test_a_reply_cut_short_does_not_poison_the_connection(settings):
    cache = _redis_cache(settings, "cut")
    cache.set_many({"a": 1, "b": "two"}, timeout=60)
    assert cacheread.get_many(cache, ["a"]) == {"a": 1}
    connection = _lane_of(cache).connection
    with mock.patch.object(type(connection), "read_response", side_effect=TimeoutError("cut")), \
            pytest.raises(TimeoutError):
        cacheread.get_many(cache, ["a", "b"])
    # The connection that failed was closed, so no stale reply is read as the next answer.
    assert connection._sock is None
    assert cacheread.get_many(cache, ["b", "a"]) == {"b": "two", "a": 1}
    assert cacheread.get_many(cache, ["a"]) == {"a": 1}
    cache.clear()


def _lane_of(cache):
    return cacheread._lanes[cache.client.get_client(write=False).connection_pool]


def _read_through_one_checkout(cache, keys, expected):
    """``get_many`` answers ``expected`` on a connection taken from the pool, once."""
    pool = cache.client.get_client(write=False).connection_pool
    with mock.patch.object(pool, "get_connection", wraps=pool.get_connection) as checkout:
        assert cacheread.get_many(cache, keys) == expected
    checkout.assert_called_once()


@needs_redis
def test_a_free_lane_answers_without_a_pool_checkout(settings):
    cache = _redis_cache(settings, "lane")
    cache.set_many({"a": 1, "b": "two"}, timeout=60)
    pool = cache.client.get_client(write=False).connection_pool
    with mock.patch.object(pool, "get_connection", side_effect=AssertionError("checkout")):
        assert cacheread.get_many(cache, ["a", "b", "c"]) == {"a": 1, "b": "two"}
        assert cacheread.get_many(cache, ["b"]) == {"b": "two"}
    lane = _lane_of(cache)
    assert lane.connection is not None and not lane.lock.locked()
    cache.clear()


@needs_redis
def test_a_busy_lane_sends_the_read_on_a_pool_connection(settings):
    cache = _redis_cache(settings, "busy")
    cache.set("a", 1, timeout=60)
    assert cacheread.get_many(cache, ["a"]) == {"a": 1}
    with _lane_of(cache).lock:
        # another thread is reading on the lane: this one does not wait for it
        _read_through_one_checkout(cache, ["a"], {"a": 1})
    cache.clear()


@needs_redis
def test_a_lane_connection_closed_by_the_server_is_reconnected_once(settings):
    cache = _redis_cache(settings, "stale")
    cache.set("a", "one", timeout=60)
    assert cacheread.get_many(cache, ["a"]) == {"a": "one"}
    lane = _lane_of(cache)
    lane.connection.send_command("CLIENT", "ID")
    lane_id = lane.connection.read_response()
    killer = cache.client.get_client(write=True)
    assert killer.execute_command("CLIENT", "KILL", "ID", lane_id) == 1
    old_socket = lane.connection._sock
    assert cacheread.get_many(cache, ["a"]) == {"a": "one"}
    assert lane.connection._sock is not None and lane.connection._sock is not old_socket
    # a server that stays away is not asked a third time
    with mock.patch.object(type(lane.connection), "send_command",
                           side_effect=RedisConnectionError("down")) as send, \
            pytest.raises(RedisConnectionError, match="down"):
        cacheread.get_many(cache, ["a"])
    assert send.call_count == 2
    cache.clear()


@needs_redis
def test_a_forked_process_opens_its_own_lane(settings, monkeypatch):
    cache = _redis_cache(settings, "forked")
    cache.set("a", 1, timeout=60)
    assert cacheread.get_many(cache, ["a"]) == {"a": 1}
    parents = _lane_of(cache)
    parent_socket = parents.connection._sock
    monkeypatch.setattr(cacheread.os, "getpid", lambda: parents.pid + 1)
    assert cacheread.get_many(cache, ["a"]) == {"a": 1}
    child = _lane_of(cache)
    assert child is not parents and child.connection is not parents.connection
    # the parent's socket is its own: the child neither uses nor closes it
    assert parents.connection._sock is parent_socket
    cache.clear()


@needs_redis
@pytest.mark.parametrize("where", ["option", "setting"])
def test_close_connection_reads_on_pool_connections(settings, where):
    if where == "setting":
        settings.DJANGO_REDIS_CLOSE_CONNECTION = True
        cache = _redis_cache(settings, "closing-setting")
    else:
        cache = _redis_cache(settings, "closing-option", CLOSE_CONNECTION=True)
    cache.set("a", 1, timeout=60)
    _read_through_one_checkout(cache, ["a"], {"a": 1})
    cache.clear()


@needs_redis
def test_pickles_go_straight_to_pickle_loads(settings):
    from django_redis.client import DefaultClient

    cache = _redis_cache(settings, "straight")
    cache.set_many({"n": 5, "entry": ("entry", 1, None)}, timeout=60)
    cacheread.forget_readers()
    with mock.patch.object(DefaultClient, "decode", autospec=True,
                           side_effect=DefaultClient.decode) as decode:
        assert cacheread.get_many(cache, ["n", "entry"]) == {"n": 5, "entry": ("entry", 1, None)}
    # only the plain integer took django-redis's decode
    assert [call.args[1] for call in decode.call_args_list] == [b"5"]
    cacheread.forget_readers()
    cache.clear()


@needs_redis
def test_close_connection_set_later_is_honoured(settings):
    cache = _redis_cache(settings, "closing-later")
    cache.set("a", 1, timeout=60)
    assert cacheread.get_many(cache, ["a"]) == {"a": 1}  # on the lane
    settings.DJANGO_REDIS_CLOSE_CONNECTION = True
    _read_through_one_checkout(cache, ["a"], {"a": 1})
    cache.clear()


def test_pools_that_manage_their_connections_get_no_lane():
    from redis.connection import BlockingConnectionPool, ConnectionPool

    class ManagedPool(ConnectionPool):  # as a Sentinel pool is
        pass

    assert cacheread._lane(ConnectionPool(host="127.0.0.1")) is not None
    assert cacheread._lane(BlockingConnectionPool(host="127.0.0.1")) is not None
    assert cacheread._lane(ManagedPool(host="127.0.0.1")) is None
    caching = ConnectionPool(host="127.0.0.1")
    caching.cache = object()  # client-side caching keeps its own connection state
    assert cacheread._lane(caching) is None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_redis_raises_even_when_django_redis_would_ignore_it(settings):
    settings.CACHES = {**settings.CACHES, "down": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5,
                    "IGNORE_EXCEPTIONS": True},
    }}
    cache = caches["down"]
    assert cache.get_many(["a"]) == {}  # django-redis hides the failure as a miss
    with pytest.raises(Exception, match=r"(?i)connect"):
        cacheread.get_many(cache, ["a"])


def test_other_backends_answer_through_their_own_get_many():
    cache = LocMemCache("cacheread-locmem", {})
    cache.set_many({"a": 1, "b": None})
    with mock.patch.object(cache, "get_many", wraps=cache.get_many) as get_many:
        assert cacheread.get_many(cache, ["a", "b", "c"]) == {"a": 1, "b": None}
    get_many.assert_called_once_with(["a", "b", "c"])


def test_sharded_and_herd_clients_are_not_read_leanly(settings):
    for client in ("ShardClient", "HerdClient"):
        settings.CACHES = {**settings.CACHES, client: {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": [REDIS_URL] if client == "ShardClient" else REDIS_URL,
            "OPTIONS": {"CLIENT_CLASS": f"django_redis.client.{client}"},
        }}
        assert cacheread._lean_client(caches[client]) is None
    settings.CACHES = {**settings.CACHES, "plain": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL,
    }}
    assert cacheread._lean_client(caches["plain"]) is not None


def test_no_keys_is_no_round_trip(settings):
    settings.CACHES = {**settings.CACHES, "idle": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
    }}
    assert cacheread.get_many(caches["idle"], []) == {}
