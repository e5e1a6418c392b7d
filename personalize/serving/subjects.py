"""Which subject a request stands for, without a query on the hot path.

Serving needs only the subject's pk (its cache keys, history and consent are
all by pk). Resolving a request through
:func:`personalize.tracking.subjects.resolve_subject` costs a query (by user or
by visitor cookie); on a cache hit that query would be the only one of the
request. So this module remembers, per process, the subject pk of each signed-in
user and each visitor id it resolved, for :data:`MEMORY_SECONDS`.

A remembered pk can go stale only when its subject is deleted (erasure) or
merged into another (sign-in); both write a *tombstone* into the subject's
generation key (see :mod:`personalize.serving.cache`), which the hot path reads
anyway in its single ``get_many``. On a tombstone the request is resolved again
from the database. Only found subjects are remembered: a visitor who gets a
subject later is looked up again.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.http import HttpRequest

from personalize.models import Subject

#: Seconds a resolved pk is trusted without a tombstone check failing.
MEMORY_SECONDS = 600.0
#: Entries kept per process (the memory is dropped when it outgrows this).
MEMORY_SIZE = 50_000

_lock = threading.Lock()
_users: dict[Any, tuple[int, float]] = {}
_visitors: dict[str, tuple[int, float]] = {}


def _as_request(obj: Any) -> HttpRequest | None:
    inner = getattr(obj, "_request", obj)
    return inner if isinstance(inner, HttpRequest) else None


def _request_identity(request: HttpRequest) -> tuple[dict[Any, tuple[int, float]], Any] | None:
    """The memory and key standing for a request: its user, else its visitor cookie."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return _users, user.pk
    from personalize.tracking.subjects import visitor_state

    visitor_id = visitor_state(request).visitor_id
    if visitor_id:
        return _visitors, visitor_id
    return None


def _from_database(obj: Any) -> int | None:
    from personalize.tracking.subjects import resolve_subject

    subject = resolve_subject(obj, create=False)
    return subject.pk if subject is not None else None


def subject_id_for(obj: Any, *, fresh: bool = False) -> tuple[int | None, bool]:
    """The subject pk behind a request, a user, a Subject or ``None``.

    Args:
        obj: what :func:`personalize.serving.service.recommend` was given.
        fresh: ignore (and replace) what this process remembers.

    Returns:
        ``(subject_pk, remembered)``; ``remembered`` tells the caller to check
        the generation for a tombstone.
    """
    if obj is None:
        return None, False
    if isinstance(obj, Subject):
        if obj.merged_into_id is None:
            return obj.pk, False
        return _from_database(obj), False
    request = _as_request(obj)
    if request is None:
        return _from_database(obj), False
    identity = _request_identity(request)
    if identity is None:
        return _from_database(request), False
    memory, key = identity
    now = time.monotonic()
    if not fresh:
        held = memory.get(key)
        if held is not None and now - held[1] < MEMORY_SECONDS:
            return held[0], True
    subject_id = _from_database(request)
    if subject_id is not None:
        with _lock:
            if len(memory) >= MEMORY_SIZE:
                memory.clear()
            memory[key] = (subject_id, now)
    return subject_id, False


def forget_subject(subject_id: int) -> None:
    """Drop every remembered mapping to ``subject_id`` in this process."""
    with _lock:
        for memory in (_users, _visitors):
            for key in [k for k, (pk, _) in memory.items() if pk == subject_id]:
                del memory[key]


def clear() -> None:
    """Forget everything (tests use it)."""
    with _lock:
        _users.clear()
        _visitors.clear()
