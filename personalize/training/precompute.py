"""Precomputed top-N lists for recently active subjects, kept in the shared cache.

A batch job (``personalize.training.tasks.precompute_top_n``) splits the active
subjects into chunks that any number of workers score in parallel. Each list is
stored under ``personalize:topn:<strategy>:<subject pk>`` with the model
version it came from; :func:`get_precomputed` returns it only while that
version is still live, and a new event of the subject deletes it (the receiver
of ``event_recorded``), so a stored list is never staler than the subject's
own history.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.cache import caches
from django.utils import timezone

from personalize.conf import personalize_settings
from personalize.strategies.base import CannotRecommend, Scored

logger = logging.getLogger(__name__)

PREFIX = "personalize:topn:"
NAMES_KEY = "personalize:topn:names"


def _cache() -> Any:
    return caches[personalize_settings.CACHE_ALIAS]


def topn_key(name: str, subject_id: Any) -> str:
    return f"{PREFIX}{name}:{subject_id}"


def active_subject_ids(days: int) -> list[int]:
    """Subjects with an event in the last ``days`` days, in primary-key order."""
    from personalize.models import Event

    since = timezone.now() - timedelta(days=days)
    # order_by() replaces Event's default ordering, which would defeat DISTINCT
    return list(
        Event.objects.filter(timestamp__gte=since).order_by("subject_id")
        .values_list("subject_id", flat=True).distinct()
    )


def precompute(name: str, subject_ids: list[int], k: int) -> int:
    """Score ``subject_ids`` with the live model of ``name`` and store their top ``k``.

    Returns:
        How many lists were stored (subjects the model cannot answer for are skipped).
    """
    from personalize.tracking.history import subject_history
    from personalize.training.active import get_active_model

    live = get_active_model(name)
    if live is None:
        return 0
    stored: dict[str, Any] = {}
    for subject_id in subject_ids:
        history = subject_history(subject_id)
        try:
            scored = live.strategy.recommend(live.artifact, history, k)
        except CannotRecommend:
            continue
        stored[topn_key(name, subject_id)] = {
            "version": live.version,
            "items": [(item, float(score)) for item, score in scored],
        }
    cache = _cache()
    cache.set_many(stored, timeout=int(personalize_settings.PRECOMPUTE_TTL))
    names = set(cache.get(NAMES_KEY) or ())
    if name not in names:
        cache.set(NAMES_KEY, sorted(names | {name}), timeout=None)
    return len(stored)


def get_precomputed(name: str, subject_id: Any) -> Scored | None:
    """The stored top-N of a subject, or ``None`` if absent or from a version no longer live."""
    from personalize.training.active import get_active_model

    try:
        value = _cache().get(topn_key(name, subject_id))
    except Exception:
        return None
    live = get_active_model(name)
    if not value or live is None or value.get("version") != live.version:
        return None
    return [(item, score) for item, score in value["items"]]


def invalidate(subject_ids: Any) -> None:
    """Drop the stored lists of these subjects (their history changed)."""
    cache = _cache()
    names = cache.get(NAMES_KEY)
    if not names or not subject_ids:
        return
    cache.delete_many([topn_key(name, sid) for name in names for sid in subject_ids])


def on_event_recorded(sender: Any = None, subject_ids: Any = None, **kwargs: Any) -> None:
    """Receiver of ``event_recorded``. Never raises."""
    try:
        invalidate(subject_ids)
    except Exception:
        logger.warning("Cannot invalidate precomputed lists", exc_info=True)


def chunks(ids: list[Any], size: int) -> list[list[Any]]:
    """``ids`` cut into lists of at most ``size``."""
    size = max(1, int(size))
    return [ids[start : start + size] for start in range(0, len(ids), size)]
