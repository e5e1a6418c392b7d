"""The retrain threshold: retrain a strategy once enough new events arrived since its last training.

Counting is cheap on both sides. Every ``event_recorded`` signal adds its
``count`` to one global counter in the shared cache (one ``INCR``); a training
remembers the counter's value when it starts. The periodic check subtracts.
When the cache lost either number (restart, eviction) the check falls back to
the database: events with a primary key above the newest one the last training
saw, counted with ``LIMIT threshold`` so it never scans more than it needs.
"""

from __future__ import annotations

import logging
from typing import Any

from personalize.backends.cache import CacheBatch, personalize_cache
from personalize.conf import personalize_settings
from personalize.models import Event, ModelVersion
from personalize.strategies.registry import strategy_names
from personalize.training.locks import is_training

logger = logging.getLogger(__name__)

COUNTER_KEY = "personalize:events:counter"
MARK_PREFIX = "personalize:train:mark:"
QUEUED_PREFIX = "personalize:train:queued:"
#: A training queued by the threshold check that has not started after this
#: many seconds (a lost message, a backlog) may be queued again.
QUEUED_TTL = 60 * 60


def _cache() -> Any:
    return personalize_cache()


def count_events(count: int, batch: CacheBatch | None = None) -> None:
    """Add ``count`` new events to the shared counter.

    Queued on ``batch`` when given, else sent at once. Never raises: a lost
    count is logged, and :func:`events_since_training` falls back to the database.
    """
    if batch is not None:
        batch.incr(COUNTER_KEY, count)
        return
    own = CacheBatch()
    own.incr(COUNTER_KEY, count)
    own.send()


def on_event_recorded(sender: Any = None, count: int | None = None,
                      subject_ids: Any = None, cache_writes: CacheBatch | None = None,
                      **kwargs: Any) -> None:
    """Receiver of ``event_recorded``: count towards the threshold."""
    n = count if count is not None else len(subject_ids or ()) or 1
    count_events(int(n), batch=cache_writes)


def mark_trained(name: str, last_event_id: int) -> None:
    """Record where a training of ``name`` started counting (called as it starts)."""
    try:
        cache = _cache()
        cache.set(MARK_PREFIX + name,
                  {"counter": cache.get(COUNTER_KEY), "last_event_id": int(last_event_id)},
                  timeout=None)
        cache.delete(QUEUED_PREFIX + name)
    except Exception:
        logger.warning("Cannot record the retrain mark of %s", name, exc_info=True)


def _last_event_id_from_db(name: str) -> int:
    parameters = (ModelVersion.objects.filter(strategy=name).order_by("-version")
                  .values_list("parameters", flat=True).first())
    if not parameters:
        return 0
    return int((parameters.get("fingerprint") or {}).get("last_event_id") or 0)


def events_since_training(name: str, limit: int | None = None) -> int:
    """New events since the last training of ``name`` started.

    Exact from the cache counter; from the database at most ``limit``.

    Args:
        name: the strategy name.
        limit: stop counting in the database at this many (the threshold).
    """
    mark: dict[str, Any] | None = None
    try:
        cache = _cache()
        values = cache.get_many([COUNTER_KEY, MARK_PREFIX + name])
        mark = values.get(MARK_PREFIX + name)
        counter = values.get(COUNTER_KEY)
        if mark is not None and counter is not None and mark.get("counter") is not None \
                and counter >= mark["counter"]:
            return int(counter - mark["counter"])
    except Exception:
        logger.warning("Cannot read the event counter; counting in the database", exc_info=True)
    last_id = int(mark["last_event_id"]) if mark else _last_event_id_from_db(name)
    queryset = Event.objects.filter(pk__gt=last_id)
    if limit is not None:
        queryset = queryset.order_by("pk")[:limit]
    return queryset.count()


def due_strategies(names: list[str] | None = None) -> list[str]:
    """The strategies that crossed ``RETRAIN_AFTER_EVENTS`` and are neither running nor queued."""
    threshold = personalize_settings.RETRAIN_AFTER_EVENTS
    if not threshold:
        return []
    due = []
    for name in names if names is not None else strategy_names():
        if is_training(name) or _cache().get(QUEUED_PREFIX + name):
            continue
        if events_since_training(name, limit=int(threshold)) >= int(threshold):
            due.append(name)
    return due


def mark_queued(name: str) -> bool:
    """Note that a training of ``name`` was queued; ``False`` if one already was."""
    return bool(_cache().add(QUEUED_PREFIX + name, 1, timeout=QUEUED_TTL))
