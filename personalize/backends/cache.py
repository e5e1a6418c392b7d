"""The shared cache as the SDK uses it, on any Django cache backend.

* :func:`personalize_cache`: the cache named by ``PERSONALIZE["CACHE_ALIAS"]``,
  as a :class:`SharedCache`: the configured backend, left alone for
  ``CACHE_RETRY_INTERVAL`` seconds after a connection error or a timeout, so
  that a cache that is down or hung costs this process one timeout per
  interval instead of one per call (it then raises :class:`CacheUnavailable`
  at once, which every caller treats as a miss or a dropped write).
* :func:`read_many`: ``cache.get_many`` that treats a cache failure as a miss
  (``None``, with a throttled warning): the cache is an accelerator, and every
  caller has the database to fall back to.
* :class:`CacheBatch`: several writes sent together. On django-redis they go
  out as one pipeline (one round trip, through django-redis's and redis-py's
  public APIs); elsewhere as the plain cache calls.
* :func:`list_keys`: the keys matching glob patterns, where the backend can list
  its keys (django-redis's ``iter_keys``); ``None`` elsewhere.
* :func:`is_process_local`: whether the cache lives inside each process
  (Django's local-memory and dummy caches), so other processes cannot see
  what this one writes.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import setting_changed
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from personalize.conf import personalize_settings

logger = logging.getLogger(__name__)

#: Seconds between two "cache unreachable" warnings of one process.
WARNING_INTERVAL = 30.0
#: What a cache that cannot be reached raises: socket errors and timeouts
#: (``OSError``), redis-py's, and django-redis's wrapper of them.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, RedisConnectionError, RedisTimeoutError, ConnectionInterrupted,
)

_last_warning = float("-inf")
#: cache alias -> monotonic time until which this process leaves that cache alone
_skip_until: dict[str, float] = {}
_wrappers: weakref.WeakKeyDictionary[BaseCache, SharedCache] = weakref.WeakKeyDictionary()


class CacheUnavailable(Exception):
    """The shared cache cannot be reached (it failed just now, or moments ago).

    Raised instead of waiting for a cache that failed less than
    ``CACHE_RETRY_INTERVAL`` seconds ago, and in place of the backend's own
    connection error or timeout, so that callers catch one exception whatever
    the backend. The training tasks retry it.
    """

    def __init__(self, alias: str, cause: BaseException | None = None) -> None:
        detail = (f"{type(cause).__name__}: {cause}" if cause is not None
                  else "it failed moments ago")
        super().__init__(f"Cache {alias!r} is unreachable ({detail}).")
        self.alias = alias


def _retry_interval() -> float:
    try:
        return max(0.0, float(personalize_settings.CACHE_RETRY_INTERVAL))
    except (TypeError, ValueError):  # personalize.E039 reports it
        return 0.0


class SharedCache(BaseCache):
    """A Django cache backend seen through the SDK's outage handling.

    Every cache method (``get``, ``get_many``, ``set``, ``add``, ``incr``, ...)
    calls the backend's own; a connection error or timeout raises
    :class:`CacheUnavailable` and makes this process skip the cache (every
    call raises :class:`CacheUnavailable` at once) for ``CACHE_RETRY_INTERVAL``
    seconds. Other errors (``ValueError`` from ``incr`` of a missing key, ...)
    pass through unchanged. Anything else (``lock``, ``iter_keys``,
    ``key_prefix``) is the backend's; wrap such calls in :meth:`guarded`.

    Args:
        backend: the Django cache backend.
        alias: its name in ``CACHES`` (outages are remembered per alias).
    """

    def __init__(self, backend: BaseCache, alias: str) -> None:
        # BaseCache.__init__ is not called: key functions, prefix and version are the backend's
        self.backend = backend
        self.alias = alias

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"<SharedCache {self.alias!r}: {self.backend!r}>"

    def available(self) -> bool:
        """Whether the cache is tried now (``False`` while an outage is being waited out)."""
        return time.monotonic() >= _skip_until.get(self.alias, float("-inf"))

    def failed(self, exc: BaseException) -> None:
        """Record an outage: this process leaves the cache alone for ``CACHE_RETRY_INTERVAL`` s."""
        interval = _retry_interval()
        if interval > 0:
            _skip_until[self.alias] = time.monotonic() + interval
        # the callers warn (throttled) about what they do instead
        logger.info("Cache %r failed (%s: %s); this process leaves it alone for %g s",
                    self.alias, type(exc).__name__, exc, interval)

    @contextmanager
    def guarded(self) -> Iterator[BaseCache]:
        """Run backend calls the wrapper does not cover (a lock, a pipeline) with its handling.

        Yields:
            The backend.

        Raises:
            CacheUnavailable: the cache failed moments ago, or fails now.
        """
        if not self.available():
            raise CacheUnavailable(self.alias)
        try:
            yield self.backend
        except OUTAGE_ERRORS as exc:
            self.failed(exc)
            raise CacheUnavailable(self.alias, exc) from exc

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self.guarded() as backend:
            return getattr(backend, method)(*args, **kwargs)

    def make_key(self, key: Any, version: Any = None) -> str:
        return str(self.backend.make_key(key, version=version))

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: Any = None) -> bool:
        return bool(self._call("add", key, value, timeout=timeout, version=version))

    def get(self, key: Any, default: Any = None, version: Any = None) -> Any:
        return self._call("get", key, default=default, version=version)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: Any = None) -> None:
        self._call("set", key, value, timeout=timeout, version=version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        return bool(self._call("touch", key, timeout=timeout, version=version))

    def delete(self, key: Any, version: Any = None) -> bool:
        return bool(self._call("delete", key, version=version))

    def get_many(self, keys: Any, version: Any = None) -> dict[Any, Any]:
        return dict(self._call("get_many", keys, version=version))

    def has_key(self, key: Any, version: Any = None) -> bool:
        return bool(self._call("has_key", key, version=version))

    def incr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        return int(self._call("incr", key, delta=delta, version=version))

    def decr(self, key: Any, delta: int = 1, version: Any = None) -> int:
        return int(self._call("decr", key, delta=delta, version=version))

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT,
                 version: Any = None) -> list[Any]:
        return list(self._call("set_many", data, timeout=timeout, version=version) or [])

    def delete_many(self, keys: Any, version: Any = None) -> None:
        self._call("delete_many", keys, version=version)

    def clear(self) -> None:
        self._call("clear")

    def close(self, **kwargs: Any) -> None:
        self.backend.close(**kwargs)


def shared_cache(backend: BaseCache, alias: str | None = None) -> SharedCache:
    """``backend`` as a :class:`SharedCache` (one wrapper per backend object).

    Args:
        backend: a Django cache backend, or a :class:`SharedCache` (returned as is).
        alias: its name in ``CACHES``; outages are remembered per alias.
    """
    if isinstance(backend, SharedCache):
        return backend
    wrapper = _wrappers.get(backend)
    if wrapper is None:
        wrapper = _wrappers[backend] = SharedCache(backend, alias or f"<{id(backend):x}>")
    return wrapper


def personalize_cache() -> SharedCache:
    """The cache named by ``PERSONALIZE['CACHE_ALIAS']`` (read at call time)."""
    alias = personalize_settings.CACHE_ALIAS
    return shared_cache(caches[alias], alias)


def is_process_local(cache: BaseCache | None = None) -> bool:
    """Whether ``cache`` (the SDK's by default) lives in this process only.

    Django's local-memory cache keeps a separate copy in every process, and the
    dummy cache keeps nothing: what one process writes (a version pointer, a
    generation) no other process reads.
    """
    cache = cache if cache is not None else personalize_cache()
    backend = cache.backend if isinstance(cache, SharedCache) else cache
    return isinstance(backend, LocMemCache | DummyCache)


def reset_outages() -> None:
    """Forget recorded outages: every cache is tried at the next call (tests use it)."""
    _skip_until.clear()


def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CACHES", "PERSONALIZE"):
        reset_outages()


setting_changed.connect(_reset_on_change)


def warn_unreachable(action: str, exc: BaseException | None = None) -> None:
    """Log that the cache failed and what happens instead, at most once per interval."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARNING_INTERVAL:
        _last_warning = now
        if isinstance(exc, CacheUnavailable):  # name what the backend raised, if anything
            exc = exc.__cause__
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
        self.cache = shared_cache(cache) if cache is not None else personalize_cache()
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
            with self.cache.guarded() as backend:
                client = _redis_client(backend)
                if client is not None:
                    _send_pipelined(client, sets, increments)
                else:
                    _send_plainly(backend, sets, increments)
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
    shared = shared_cache(cache) if cache is not None else personalize_cache()
    iter_keys = getattr(shared.backend, "iter_keys", None)  # django-redis only
    if iter_keys is None:
        return None
    found: set[str] = set()
    with shared.guarded():
        for pattern in patterns:
            found.update(iter_keys(pattern))
    return sorted(found)
