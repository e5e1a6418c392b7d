"""cacheread.get_many: one lean MGET that answers exactly what cache.get_many does."""

from __future__ import annotations

import os
import socket
from unittest import mock

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

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
], ids=["pickle", "zlib", "json"])
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
    pool = cache.client.get_client(write=False).connection_pool
    connection = pool.get_connection()
    pool.release(connection)
    with mock.patch.object(type(connection), "read_response", side_effect=TimeoutError("cut")), \
            pytest.raises(TimeoutError):
        cacheread.get_many(cache, ["a", "b"])
    # The connection that failed was closed, so no stale reply is read as the next answer.
    assert connection._sock is None
    assert cacheread.get_many(cache, ["b", "a"]) == {"b": "two", "a": 1}
    assert cacheread.get_many(cache, ["a"]) == {"a": 1}
    cache.clear()


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
