"""Several cache reads in one lean round trip.

Every recommendation block and every tracked event starts with one
``get_many`` of the shared cache (generations, consent, the cached block).
On django-redis that call passes through redis-py's command machinery (its
retry wrapper, response callbacks and, since redis-py 8, its observability
hooks), which costs about twice the round trip itself on a local Redis.
:func:`get_many` sends the same ``MGET`` and decodes the values with the
cache's own serializer and compressor (a pickle, django-redis's default,
goes straight to ``pickle.loads``), so what it returns is exactly what
``cache.get_many`` would; on other backends it is ``cache.get_many``. What
it needs of a client is worked out once per cache object.

The ``MGET`` goes out on a *lane* when one is free: one connection per
connection pool and process, kept outside the pool and taken without waiting
(a thread that finds it busy uses a connection of the pool, as before). A
pool checkout (its lock, its health poll, its accounting, a deprecation
wrapper and the release) costs about as much as the round trip; a process
serving one request at a time now pays it never. One lane per process, not
per thread, so servers that start a thread per request hold no more sockets.
Lanes are used only where they behave like the pool's connections: a plain
``ConnectionPool`` or ``BlockingConnectionPool`` without client-side caching,
and not with django-redis's ``CLOSE_CONNECTION`` (which closes connections
after each request: the pool is used then, as django-redis itself would).

Unlike django-redis with ``IGNORE_EXCEPTIONS``, a failure raises: the callers
know what an unreachable cache means for them (serving computes directly,
consent reads the ledger), where an empty answer would look like a miss.
"""

from __future__ import annotations

import os
import pickle
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache

from personalize.cachebatch import redis_client


def _lean_client(cache: BaseCache) -> Any:
    """The django-redis client of ``cache`` if its ``get_many`` is one plain ``MGET``."""
    client = redis_client(cache)
    if client is None:
        return None
    from django_redis.client import HerdClient

    # the herd client rewrites values on read
    return None if isinstance(client, HerdClient) else client


#: A pickle of protocol 2 or later opens with the PROTO opcode; a plain integer never does.
_PICKLE_PROTO = b"\x80"


def _decoder(client: Any) -> Callable[[bytes], Any]:
    """``client.decode``, with pickled values (django-redis's default) loaded in one call.

    django-redis first tries every value as an integer and lets a compressor
    look at it; with its pickle serializer and no compressor, a pickle can go
    straight to ``pickle.loads``. Anything else takes ``client.decode``.
    """
    from django_redis.client import DefaultClient
    from django_redis.compressors.identity import IdentityCompressor
    from django_redis.serializers.pickle import PickleSerializer

    decode: Callable[[bytes], Any] = client.decode
    if (
        type(client).decode is not DefaultClient.decode
        or type(client._compressor) is not IdentityCompressor
        or type(client._serializer) is not PickleSerializer
    ):
        return decode
    loads = pickle.loads

    def decode_pickle(value: bytes) -> Any:
        return loads(value) if value[:1] == _PICKLE_PROTO else decode(value)

    return decode_pickle


class _Reader:
    """What :func:`get_many` needs of one django-redis client, worked out once."""

    __slots__ = ("client", "decode", "uses_lanes")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.decode = _decoder(client)
        self.uses_lanes = not _closes_connections(client)


#: The reader per cache object (Django keeps one per alias and thread);
#: ``None`` for a cache that :func:`get_many` leaves to its own ``get_many``.
_readers: weakref.WeakKeyDictionary[BaseCache, _Reader | None] = weakref.WeakKeyDictionary()


def _new_reader(cache: BaseCache) -> _Reader | None:
    client = _lean_client(cache)
    return None if client is None else _Reader(client)


def _reader(cache: BaseCache) -> _Reader | None:
    try:
        return _readers[cache]
    except KeyError:
        reader = _readers[cache] = _new_reader(cache)
        return reader
    except TypeError:  # a cache class that cannot be weakly referenced
        return _new_reader(cache)


def forget_readers() -> None:
    """Work the readers out again (a setting they depend on changed: tests)."""
    _readers.clear()


class _Lane:
    """One connection of a pool's kind, for one thread at a time, in one process."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.connection: Any = None

    def mget(self, keys: Sequence[str]) -> list[Any]:
        """``MGET keys`` on the lane's connection; the caller holds :attr:`lock`."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        if self.connection is None:
            # what the pool's make_connection builds, without counting it as the pool's
            self.connection = self.pool.connection_class(**self.pool.connection_kwargs)
        try:
            return _mget(self.connection, keys)
        except RedisConnectionError:
            # The server may have closed the connection while it was idle (a
            # restart, a timeout): the pool would have noticed on checkout. A
            # read is safe to send again, once, on a fresh connection.
            return _mget(self.connection, keys)


_lanes: weakref.WeakKeyDictionary[Any, _Lane] = weakref.WeakKeyDictionary()
_lanes_lock = threading.Lock()


def _lane(pool: Any) -> _Lane | None:
    """The lane of ``pool`` in this process, or ``None`` when the pool needs its own connections."""
    lane = _lanes.get(pool)
    if lane is not None and lane.pid == os.getpid():
        return lane
    from redis.connection import BlockingConnectionPool, ConnectionPool

    if type(pool) not in (ConnectionPool, BlockingConnectionPool) or \
            getattr(pool, "cache", None) is not None:
        return None
    with _lanes_lock:
        lane = _lanes.get(pool)
        if lane is None or lane.pid != os.getpid():
            # after a fork the parent's socket is left alone: its owner still uses it
            lane = _lanes[pool] = _Lane(pool)
        return lane


def _closes_connections(client: Any) -> bool:
    """Whether django-redis closes this client's connections after each request."""
    return bool(client._options.get(
        "CLOSE_CONNECTION", getattr(settings, "DJANGO_REDIS_CLOSE_CONNECTION", False)))


def _mget(connection: Any, keys: Sequence[str]) -> list[Any]:
    try:
        connection.send_command("MGET", *keys)
        return list(connection.read_response())
    except BaseException:
        # a half-read reply must not reach the next user of this connection
        connection.disconnect()
        raise


def _pool_mget(pool: Any, keys: Sequence[str]) -> list[Any]:
    # The pool checks the connection on checkout (and reconnects a stale one).
    connection = pool.get_connection()
    try:
        return _mget(connection, keys)
    finally:
        pool.release(connection)


def get_many(cache: BaseCache, keys: Sequence[str]) -> dict[str, Any]:
    """``cache.get_many(keys)``: the keys found, with their values.

    Raises:
        Whatever the cache backend or redis-py raises when the cache cannot be
        read. A lane's connection found closed is reconnected and asked once
        more, as the pool reconnects a connection found broken when it is
        taken; any other failure while sending or reading is not retried (the
        callers fall back at once, which is what a visitor's request wants).
    """
    reader = _reader(cache)
    if reader is None or not keys:
        return cache.get_many(keys)
    client = reader.client
    pool = client.get_client(write=False).connection_pool
    make_key = client.make_key
    full_keys = [make_key(key) for key in keys]
    lane = _lane(pool) if reader.uses_lanes else None
    if lane is not None and lane.lock.acquire(blocking=False):
        try:
            values = lane.mget(full_keys)
        finally:
            lane.lock.release()
    else:
        values = _pool_mget(pool, full_keys)
    decode = reader.decode
    return {key: decode(value)
            for key, value in zip(keys, values, strict=True) if value is not None}
