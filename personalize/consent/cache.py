"""Per-subject cache keys: how they are named, found and forgotten.

Every cache entry that holds something about one subject (consent state,
cached recommendation blocks, rate-limit counters, ...) must carry the token
``subject:<pk>`` in its key, either at the end or followed by ``:``, for
example ``personalize:rec:subject:42:home``. :func:`subject_cache_token` builds
the token. Erasure then finds every such key without knowing which module
wrote it, on django-redis by ``SCAN``. Django's own backends (local memory,
memcached, database) cannot list keys; there erasure deletes the keys it knows,
and the owners of other keys make them unreadable on the ``subject_erased``
signal (serving moves the subject's block generation), so they expire unread
(see docs/consent.md).

Cache failures never break the caller: losing Redis makes reads fall back to
the database and deletions a logged no-op.
"""

from __future__ import annotations

import logging

from personalize.backends.cache import list_keys, personalize_cache

logger = logging.getLogger(__name__)

#: Prefix of every key this app writes.
KEY_PREFIX = "personalize"


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


def delete_subject_keys(subject_id: int, key: str | None = None) -> int:
    """Delete every cache key that references a subject (see the module docstring).

    Args:
        subject_id: the subject's pk.
        key: the subject's pseudonymous key, to also catch keys built from it.

    Returns:
        How many keys were deleted (known keys only, on backends that cannot list).
    """
    cache = personalize_cache()
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
