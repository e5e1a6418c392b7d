"""Cross-process locks in the shared cache, so two trainings of one strategy never overlap.

With django-redis the lock is Redis's own (``cache.lock``: ``SET NX PX`` plus
token-checked release and renewal scripts). With any other cache backend it
falls back to ``cache.add`` (atomic "set if absent" on locmem, Memcached, the
database cache) with a random token, so one holder never releases another's
lock.

A training lock lives only ``TRAINING_LOCK_TTL`` seconds (one minute by
default) unless renewed: :func:`training_lock` renews it from a background
thread every third of that while the training runs. A worker that dies stops
renewing, and its lock expires within ``TRAINING_LOCK_TTL`` seconds, so the
next training (or the re-delivered task) can start; a training that runs for
hours keeps its lock for hours.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections

from personalize.backends.cache import SharedCache, personalize_cache
from personalize.conf import personalize_settings

logger = logging.getLogger(__name__)

LOCK_PREFIX = "personalize:lock:"


class LockHeld(Exception):
    """Someone else holds the lock."""


class TrainingInProgress(LockHeld):
    """A training of this strategy is already running."""

    def __init__(self, strategy: str, message: str | None = None) -> None:
        super().__init__(message or f"Training of {strategy!r} is already running.")
        self.strategy = strategy


class LockLost(TrainingInProgress):
    """Another process took the lock over while this one held it.

    It happens only when this process could not renew the lock for longer than
    its time to live (the cache was unreachable, or the process was paused), so
    the lock expired and another training took it.
    """

    def __init__(self, strategy: str) -> None:
        super().__init__(
            strategy,
            f"The training lock of {strategy!r} expired while this training ran (the cache "
            "was unreachable for longer than TRAINING_LOCK_TTL) and another training took it.",
        )


class CacheLock:
    """A non-blocking lock named ``key`` in the shared cache.

    Args:
        key: the lock's name (prefixed with ``personalize:lock:``).
        timeout: seconds after which the lock expires unless renewed (at least 1).

    The cache's outages surface as
    :class:`~personalize.backends.cache.CacheUnavailable` from every method.
    """

    def __init__(self, key: str, timeout: float) -> None:
        self.key = LOCK_PREFIX + key
        self.timeout = max(1.0, float(timeout))
        self._cache: SharedCache | None = None
        self._token: str | None = None
        self._redis_lock: Any = None

    def acquire(self) -> bool:
        """Take the lock if it is free; returns whether this call got it."""
        cache = personalize_cache()
        with cache.guarded() as backend:
            if hasattr(backend, "lock"):  # django-redis
                # thread_local=False: the renewing thread must see the token
                lock = backend.lock(self.key, timeout=self.timeout, thread_local=False)
                if not lock.acquire(blocking=False):
                    return False
                self._cache, self._redis_lock = cache, lock
                return True
        token = uuid.uuid4().hex
        if cache.add(self.key, token, timeout=self.timeout):
            self._cache, self._token = cache, token
            return True
        return False

    def renew(self) -> bool:
        """Give the held lock its full time to live again.

        Returns:
            ``True`` while the lock is this holder's (renewed, or taken again
            after it expired with nobody else taking it); ``False`` when
            another holder has it now.
        """
        if self._cache is None:
            return False
        if self._redis_lock is not None:
            from redis.exceptions import LockError

            with self._cache.guarded():
                try:
                    self._redis_lock.reacquire()
                    return True
                except LockError:  # expired: take it again unless someone else did
                    return bool(self._redis_lock.acquire(blocking=False))
        cache = self._cache
        current = cache.get(self.key)
        if current == self._token:
            # touch() is False when the key expired between the two calls
            return cache.touch(self.key, timeout=self.timeout) or bool(
                cache.add(self.key, self._token, timeout=self.timeout))
        if current is None:
            return bool(cache.add(self.key, self._token, timeout=self.timeout))
        return False

    def release(self) -> None:
        """Give the lock back (a no-op if it expired or was never taken)."""
        cache, self._cache = self._cache, None
        if cache is None:
            return
        if self._redis_lock is not None:
            from redis.exceptions import LockError

            lock, self._redis_lock = self._redis_lock, None
            with cache.guarded():
                try:
                    lock.release()
                except LockError:  # expired and maybe taken by someone else: not ours to free
                    logger.warning("Lock %s had expired before it was released", self.key)
        elif self._token is not None:
            token, self._token = self._token, None
            if cache.get(self.key) == token:
                cache.delete(self.key)

    def locked(self) -> bool:
        """Whether anyone holds the lock now."""
        cache = personalize_cache()
        with cache.guarded() as backend:
            if hasattr(backend, "lock"):
                return bool(backend.lock(self.key, thread_local=False).locked())
        return cache.get(self.key) is not None


class LockKeeper:
    """Renews a held :class:`CacheLock` every third of its time to live, in a daemon thread.

    A renewal that fails because the cache is unreachable is logged and tried
    again at the next beat; a renewal that finds another holder marks the lock
    lost (:meth:`verify` raises :class:`LockLost`).

    Args:
        lock: a lock this process holds.
        strategy: the strategy it guards (for messages).
    """

    def __init__(self, lock: CacheLock, strategy: str) -> None:
        self.lock = lock
        self.strategy = strategy
        self.interval = lock.timeout / 3
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"personalize-lock-{strategy}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 5)

    def verify(self) -> None:
        """Raise :class:`LockLost` if another process took the lock over."""
        if self.lost:
            raise LockLost(self.strategy)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if self.lock.renew():
                        continue
                except Exception:
                    logger.warning("Cannot renew the training lock of %s; trying again in %.0f s",
                                   self.strategy, self.interval, exc_info=True)
                    continue
                self.lost = True
                logger.error("The training lock of %s was taken over by another process",
                             self.strategy)
                return
        finally:
            connections.close_all()  # a database cache opened this thread's own connection


def training_lock_key(strategy: str) -> str:
    return f"train:{strategy}"


@contextmanager
def training_lock(strategy: str, ttl: float | None = None) -> Iterator[LockKeeper]:
    """Hold the training lock of ``strategy`` for the ``with`` block, renewed while it runs.

    Args:
        strategy: the configured strategy name.
        ttl: seconds the lock outlives its holder; ``TRAINING_LOCK_TTL`` by default.

    Yields:
        The :class:`LockKeeper` renewing it; call its ``verify()`` before a step
        that must not run twice (activation).

    Raises:
        TrainingInProgress: another process holds it.
        personalize.backends.cache.CacheUnavailable: the cache cannot be reached
            (a retry later may succeed).
    """
    lock = CacheLock(
        training_lock_key(strategy),
        personalize_settings.TRAINING_LOCK_TTL if ttl is None else ttl,
    )
    if not lock.acquire():
        raise TrainingInProgress(strategy)
    keeper = LockKeeper(lock, strategy)
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.stop()
        try:
            lock.release()
        except Exception:  # it expires by itself within its time to live
            logger.warning("Cannot release the training lock of %s", strategy, exc_info=True)


def is_training(strategy: str) -> bool:
    """Whether a training of ``strategy`` holds its lock right now."""
    return CacheLock(training_lock_key(strategy), 1).locked()
