"""The shared cache as the SDK uses it, on any Django cache backend.

* :func:`personalize_cache`: the cache named by ``PERSONALIZE["CACHE_ALIAS"]``.
* :func:`read_many`: ``cache.get_many`` that treats a cache failure as a miss
  (``None``, with a throttled warning): the cache is an accelerator, and every
  caller has the database to fall back to.
* :class:`CacheBatch`: several writes sent together. On django-redis they go
  out as one pipeline (one round trip, through django-redis's and redis-py's
  public APIs); elsewhere as the plain cache calls.
* :func:`list_keys`: the keys matching glob patterns, where the backend can list
  its keys (django-redis's ``iter_keys``); ``None`` elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.cache import BaseCache, caches

from personalize.conf import personalize_settings

logger = logging.getLogger(__name__)

#: Seconds between two "cache unreachable" warnings of one process.
WARNING_INTERVAL = 30.0

_last_warning = float("-inf")


def personalize_cache() -> BaseCache:
    """The cache named by ``PERSONALIZE['CACHE_ALIAS']`` (read at call time)."""
    return caches[personalize_settings.CACHE_ALIAS]


def warn_unreachable(action: str, exc: BaseException | None = None) -> None:
    """Log that the cache failed and what happens instead, at most once per interval."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARNING_INTERVAL:
        _last_warning = now
        cause = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        logger.warning("Cache %r unreachable%s; %s", personalize_settings.CACHE_ALIAS, cause,
                       action)


def reset_warning_throttle() -> None:
    """Let the next cache failure log again at once (tests use it)."""
    global _last_warning
    _last_warning = float("-inf")


def read_many(keys: Sequence[str], action: str = "reading the database instead"
              ) -> dict[str, Any] | None:
    """The keys found and their values (one ``get_many``); ``None`` when the cache failed.

    Args:
        keys: the keys to read.
        action: what the caller does instead, for the warning.
    """
    try:
        return personalize_cache().get_many(keys)
    except Exception as exc:  # an accelerator: never an error for the visitor
        warn_unreachable(action, exc)
        return None


def _redis_client(cache: BaseCache) -> Any:
    """The django-redis client of ``cache`` when one connection reaches all its keys, else None."""
    try:
        from django_redis.cache import RedisCache
        from django_redis.client import DefaultClient, ShardClient
    except ImportError:  # pragma: no cover - django-redis is a core dependency
        return None
    if not isinstance(cache, RedisCache):
        return None
    client = cache.client
    # a sharded client spreads keys over servers: no single pipeline reaches them all
    if isinstance(client, DefaultClient) and not isinstance(client, ShardClient):
        return client
    return None


class CacheBatch:
    """Cache writes collected now and sent together by :meth:`send`.

    Recording an event is the hottest write path of a site, and each
    ``event_recorded`` receiver writes to the cache (serving moves the
    subject's block generation, training counts towards the retrain
    threshold): collected here, they cost one round trip instead of one each.

    Only the two operations the receivers need: ``set_many`` (last write of a
    key wins) and ``incr`` (which, unlike Django's, creates a missing key at
    ``delta`` instead of raising). A failure to send is logged and swallowed:
    the database holds the events, and every value written here is either
    re-derived (counters fall back to the database) or guarded (blocks carry
    generations and a TTL).
    """

    def __init__(self, cache: BaseCache | None = None) -> None:
        self.cache = cache if cache is not None else personalize_cache()
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
            client = _redis_client(self.cache)
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
        # django-redis stores integers unencoded, so INCRBY works on them
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


def list_keys(patterns: Iterable[str], cache: BaseCache | None = None) -> list[str] | None:
    """The keys (as the app wrote them) matching any glob pattern.

    Returns:
        The keys, or ``None`` when the backend cannot list its keys (Django's
        own backends cannot; django-redis can, with ``SCAN``).
    """
    cache = cache if cache is not None else personalize_cache()
    iter_keys = getattr(cache, "iter_keys", None)
    if iter_keys is None:
        return None
    found: set[str] = set()
    for pattern in patterns:
        found.update(iter_keys(pattern))
    return sorted(found)
