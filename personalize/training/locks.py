"""Cross-process locks in the shared cache, so two trainings of one strategy never overlap.

With django-redis the lock is Redis's own (``cache.lock``: ``SET NX PX`` plus a
token-checked release script). With any other cache backend it falls back to
``cache.add`` (atomic "set if absent" on locmem, Memcached, the database cache)
with a random token, so one holder never releases another's lock. Both expire
after a timeout, so a worker killed mid-training does not block the strategy
forever.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache import caches

from personalize.conf import personalize_settings

logger = logging.getLogger(__name__)

LOCK_PREFIX = "personalize:lock:"


class LockHeld(Exception):
    """Someone else holds the lock."""


class TrainingInProgress(LockHeld):
    """A training of this strategy is already running."""

    def __init__(self, strategy: str) -> None:
        super().__init__(f"Training of {strategy!r} is already running.")
        self.strategy = strategy


def _cache() -> Any:
    return caches[personalize_settings.CACHE_ALIAS]


class CacheLock:
    """A non-blocking lock named ``key`` in the shared cache.

    Args:
        key: the lock's name (prefixed with ``personalize:lock:``).
        timeout: seconds after which the lock expires on its own.
    """

    def __init__(self, key: str, timeout: float) -> None:
        self.key = LOCK_PREFIX + key
        self.timeout = max(1, int(timeout))
        self._token: str | None = None
        self._redis_lock: Any = None

    def acquire(self) -> bool:
        """Take the lock if it is free; returns whether this call got it."""
        cache = _cache()
        if hasattr(cache, "lock"):  # django-redis
            lock = cache.lock(self.key, timeout=self.timeout, thread_local=False)
            if lock.acquire(blocking=False):
                self._redis_lock = lock
                return True
            return False
        token = uuid.uuid4().hex
        if cache.add(self.key, token, timeout=self.timeout):
            self._token = token
            return True
        return False

    def release(self) -> None:
        """Give the lock back (a no-op if it expired or was never taken)."""
        if self._redis_lock is not None:
            from redis.exceptions import LockError

            try:
                self._redis_lock.release()
            except LockError:  # expired and maybe taken by someone else: not ours to free
                logger.warning("Lock %s had expired before it was released", self.key)
            self._redis_lock = None
        elif self._token is not None:
            cache = _cache()
            if cache.get(self.key) == self._token:
                cache.delete(self.key)
            self._token = None

    def locked(self) -> bool:
        """Whether anyone holds the lock now."""
        cache = _cache()
        if hasattr(cache, "lock"):
            return bool(cache.lock(self.key, thread_local=False).locked())
        return cache.get(self.key) is not None


def training_lock_key(strategy: str) -> str:
    return f"train:{strategy}"


@contextmanager
def training_lock(strategy: str, timeout: float | None = None) -> Iterator[None]:
    """Hold the training lock of ``strategy`` for the ``with`` block.

    Args:
        strategy: the configured strategy name.
        timeout: seconds before the lock expires; ``TRAINING_LOCK_TIMEOUT`` by default.

    Raises:
        TrainingInProgress: another process holds it.
    """
    lock = CacheLock(
        training_lock_key(strategy),
        personalize_settings.TRAINING_LOCK_TIMEOUT if timeout is None else timeout,
    )
    if not lock.acquire():
        raise TrainingInProgress(strategy)
    try:
        yield
    finally:
        lock.release()


def is_training(strategy: str) -> bool:
    """Whether a training of ``strategy`` holds its lock right now."""
    return CacheLock(training_lock_key(strategy), 1).locked()
