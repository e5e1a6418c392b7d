"""Several cache reads in one lean round trip.

Every recommendation block and every tracked event starts with one
``get_many`` of the shared cache (generations, consent, the cached block).
On django-redis that call passes through redis-py's command machinery (its
retry wrapper, response callbacks and, since redis-py 8, its observability
hooks), which costs about twice the round trip itself on a local Redis.
:func:`get_many` sends the same ``MGET`` on a connection of the same pool and
decodes the values with the cache's own serializer and compressor, so what it
returns is exactly what ``cache.get_many`` would; on other backends it is
``cache.get_many``.

Unlike django-redis with ``IGNORE_EXCEPTIONS``, a failure raises: the callers
know what an unreachable cache means for them (serving computes directly,
consent reads the ledger), where an empty answer would look like a miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def get_many(cache: BaseCache, keys: Sequence[str]) -> dict[str, Any]:
    """``cache.get_many(keys)``: the keys found, with their values.

    Raises:
        Whatever the cache backend or redis-py raises when the cache cannot be
        read. The pool reconnects a connection found broken when it is taken;
        a failure while sending or reading is not retried (the callers fall
        back at once, which is what a visitor's request wants).
    """
    client = _lean_client(cache)
    if client is None or not keys:
        return cache.get_many(keys)
    redis = client.get_client(write=False)
    full_keys = [client.make_key(key) for key in keys]
    pool = redis.connection_pool
    # The pool checks the connection on checkout (and reconnects a stale one).
    connection = pool.get_connection()
    try:
        connection.send_command("MGET", *full_keys)
        values = connection.read_response()
    except BaseException:
        # a half-read reply must not reach the next user of this connection
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
    decode = client.decode
    return {key: decode(value)
            for key, value in zip(keys, values, strict=True) if value is not None}
