"""Several cache writes sent in one round trip.

Recording an event is the hottest write path of a site, and each of its
``event_recorded`` receivers writes to the shared cache: serving moves the
subject's block generation, training counts towards the retrain threshold.
Sent one by one, that is a network round trip per write on every tracked page
view. A :class:`CacheBatch` collects them instead and sends them together: as
one pipeline on django-redis, and as the plain cache calls on other backends
(which are in-process or have no pipelines).

A batch is an accelerator like the cache itself: a failure to send it is
logged and swallowed, because the database already holds the events and every
cached value it would have written is either re-derived (counters fall back
to the database) or guarded (blocks carry generations and a TTL).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import BaseCache

logger = logging.getLogger(__name__)


def redis_client(cache: BaseCache) -> Any:
    """The django-redis client of ``cache`` if one connection reaches all its keys, else ``None``.

    Then its writes can share one pipeline (here) and its reads one ``MGET``
    (:mod:`personalize.cacheread`).
    """
    try:
        from django_redis.client import DefaultClient, ShardClient
    except ImportError:  # pragma: no cover - django-redis is a core dependency
        return None
    client = getattr(cache, "client", None)
    # A sharded client spreads keys over servers: no single pipeline reaches them all.
    if isinstance(client, DefaultClient) and not isinstance(client, ShardClient):
        return client
    return None


class CacheBatch:
    """Cache writes collected now and sent together by :meth:`send`.

    Only the two operations the event receivers need: ``set_many`` (last write
    of a key wins) and ``incr`` (which, unlike Django's, creates a missing key
    at ``delta`` instead of raising).
    """

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache
        self._sets: dict[str, tuple[Any, float | None]] = {}
        self._increments: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._sets) + len(self._increments)

    def set_many(self, mapping: dict[str, Any], timeout: float | None) -> None:
        """Queue ``cache.set_many(mapping, timeout)``."""
        for key, value in mapping.items():
            self._sets[key] = (value, timeout)

    def incr(self, key: str, delta: int = 1) -> None:
        """Queue adding ``delta`` to the integer at ``key`` (created without expiry if missing)."""
        self._increments[key] = self._increments.get(key, 0) + int(delta)

    def send(self) -> bool:
        """Send every queued write; ``False`` (and a warning) if the cache failed.

        Empties the batch either way.
        """
        if not self:
            return True
        sets, increments = self._sets, self._increments
        self._sets, self._increments = {}, {}
        try:
            client = redis_client(self.cache)
            if client is not None:
                _send_pipelined(client, sets, increments)
            else:
                _send_plainly(self.cache, sets, increments)
        except Exception:
            logger.warning("Cannot write %d value(s) to the cache; they are re-derived later",
                           len(sets) + len(increments), exc_info=True)
            return False
        return True


def _send_pipelined(client: Any, sets: dict[str, tuple[Any, float | None]],
                    increments: dict[str, int]) -> None:
    pipeline = client.get_client(write=True).pipeline(transaction=False)
    for key, (value, timeout) in sets.items():
        # django-redis encodes the value and turns the timeout into PX on the pipeline
        client.set(key, value, timeout, client=pipeline)
    for key, delta in increments.items():
        # Integers are stored unencoded by django-redis, so INCRBY works on them.
        pipeline.incrby(client.make_key(key), delta)
    pipeline.execute()


def _send_plainly(cache: BaseCache, sets: dict[str, tuple[Any, float | None]],
                  increments: dict[str, int]) -> None:
    by_timeout: dict[float | None, dict[str, Any]] = {}
    for key, (value, timeout) in sets.items():
        by_timeout.setdefault(timeout, {})[key] = value
    for timeout, mapping in by_timeout.items():
        cache.set_many(mapping, timeout=timeout)
    for key, delta in increments.items():
        try:
            cache.incr(key, delta)
        except ValueError:  # missing: create it, unless another process just did
            if not cache.add(key, delta, timeout=None):
                cache.incr(key, delta)
