"""Per-subject cache keys: how they are named, found and forgotten.

Every cache entry that holds something about one subject (consent state,
cached recommendation blocks, rate-limit counters, ...) must carry the token
``subject:<pk>`` in its key, either at the end or followed by ``:``, for
example ``personalize:rec:subject:42:home``. :func:`subject_cache_token` builds
the token. Erasure then finds every such key without knowing which module
wrote it: on django-redis by ``SCAN`` over the key prefix, on the local-memory
cache by walking its keys. Other backends (memcached, database) cannot list
keys; there erasure deletes the keys it knows and the owners of other keys
forget them on the ``subject_erased`` signal (see docs/consent.md).

Cache failures never break the caller: losing Redis makes reads fall back to
the database and deletions a logged no-op.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.cache import BaseCache, caches

from personalize.conf import personalize_settings

logger = logging.getLogger(__name__)

#: Prefix of every key this app writes.
KEY_PREFIX = "personalize"


def get_cache() -> BaseCache:
    """The cache named by ``PERSONALIZE['CACHE_ALIAS']`` (read at call time)."""
    return caches[personalize_settings.CACHE_ALIAS]


def subject_cache_token(subject_id: int) -> str:
    """The token every per-subject cache key contains (``subject:<pk>``)."""
    return f"subject:{int(subject_id)}"


def consent_cache_key(subject_id: int) -> str:
    """Where the current consent state of one subject is cached."""
    return f"{KEY_PREFIX}:consent:{subject_cache_token(subject_id)}"


def subject_key_patterns(subject_id: int, key: str | None = None) -> list[str]:
    """Glob patterns matching every cache key that references a subject."""
    token = subject_cache_token(subject_id)
    patterns = [f"*{token}", f"*{token}:*"]
    if key:
        patterns.append(f"*{key}*")
    return patterns


def _is_redis(cache: BaseCache) -> bool:
    return hasattr(cache, "delete_pattern") and hasattr(cache, "iter_keys")


def _is_locmem(cache: BaseCache) -> bool:
    return hasattr(cache, "_cache") and hasattr(cache, "_lock") and hasattr(cache, "make_key")


def list_keys(patterns: Iterable[str], cache: BaseCache | None = None) -> list[str] | None:
    """The keys (as the app wrote them, without the cache's prefix) matching any pattern.

    Returns:
        The matching keys, or ``None`` when the backend cannot list its keys.
    """
    cache = cache or get_cache()
    patterns = list(patterns)
    if _is_redis(cache):
        found: set[str] = set()
        for pattern in patterns:
            found.update(cache.iter_keys(pattern))  # type: ignore[attr-defined]
        return sorted(found)
    if _is_locmem(cache):
        return sorted(
            key for key in _locmem_keys(cache) if any(fnmatch.fnmatchcase(key, p) for p in patterns)
        )
    return None


def _locmem_keys(cache: Any) -> Iterator[str]:
    # LocMemCache stores made keys ("<prefix>:<version>:<key>"); strip the first two parts.
    with cache._lock:
        made = list(cache._cache)
    for full in made:
        parts = full.split(":", 2)
        yield parts[2] if len(parts) == 3 else full


def delete_subject_keys(subject_id: int, key: str | None = None) -> int:
    """Delete every cache key that references a subject (see the module docstring).

    Args:
        subject_id: the subject's pk.
        key: the subject's pseudonymous key, to also catch keys built from it.

    Returns:
        How many keys were deleted (known keys only, on backends that cannot list).
    """
    cache = get_cache()
    try:
        keys = list_keys(subject_key_patterns(subject_id, key), cache)
        if keys is None:  # cannot list: delete what this app knows about
            keys = [consent_cache_key(subject_id)]
        if keys:
            cache.delete_many(keys)
        return len(keys)
    except Exception:
        logger.exception("Could not delete the cache keys of subject %s", subject_id)
        return 0
