"""Celery tasks of the training verb: thin callers of the service modules.

The app ships ``@shared_task`` functions; the site's Celery app (configured from
Django settings with the ``CELERY_`` namespace) discovers them through
``personalize.tasks``. Every task is idempotent: a training re-delivered after
a worker crash returns the version already trained on the same data, chunk jobs
overwrite the same cache keys or upsert the same rows.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import chord, group, shared_task

from personalize.conf import personalize_settings
from personalize.models import Item
from personalize.strategies.registry import strategy_names
from personalize.training import embedding, service, triggers
from personalize.training.locks import TrainingInProgress
from personalize.training.service import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)

__all__ = [
    "check_retrain_thresholds",
    "embed_catalog",
    "embed_chunk",
    "embed_items",
    "embed_merge",
    "embed_pending",
    "train_all",
    "train_strategy",
    "workers_running",
]

RETRY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


def chunks(ids: list[Any], size: int) -> list[list[Any]]:
    """``ids`` cut into lists of at most ``size`` (one task each)."""
    size = max(1, int(size))
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def _summary(version: Any, name: str) -> dict[str, Any]:
    return {
        "strategy": name, "version": version.version, "status": version.status,
        "metrics": version.metrics, "note": version.note,
    }


@shared_task(acks_late=True, **RETRY)
def train_strategy(name: str, force: bool = False) -> dict[str, Any]:
    """Train one strategy (see :func:`personalize.training.service.train_strategy`).

    Returns:
        ``{"strategy", "version", "status", "metrics", "note"}``, or
        ``{"strategy", "status": "already running"}`` when another training of
        the same strategy holds the lock.
    """
    try:
        version = service.train_strategy(name, force=force)
    except TrainingInProgress:
        logger.info("Training of %s is already running; skipped", name)
        return {"strategy": name, "status": "already running"}
    return _summary(version, name)


@shared_task(**RETRY)
def train_all(force: bool = False) -> list[str]:
    """Queue a training of every configured strategy, in parallel (one task each)."""
    names = strategy_names()
    group(train_strategy.s(name, force=force) for name in names).apply_async()
    return names


@shared_task(**RETRY)
def check_retrain_thresholds() -> list[str]:
    """Queue a training of each strategy that got ``RETRAIN_AFTER_EVENTS`` new events."""
    queued = []
    for name in triggers.due_strategies():
        if triggers.mark_queued(name):
            train_strategy.delay(name)
            queued.append(name)
    if queued:
        logger.info("Retrain threshold reached for %s", ", ".join(queued))
    return queued


# --- batch jobs split over workers ------------------------------------------------


@shared_task(**RETRY)
def embed_items(item_ids: list[int], chunk_size: int | None = None) -> dict[str, Any]:
    """Embed new or changed items into every live content model, before the next training.

    One chunk runs here; more are spread over workers with a chord.
    """
    names = embedding.embedding_strategy_names()
    if not names or not item_ids:
        return {"items": len(item_ids), "strategies": [], "chunks": 0}
    parts = chunks(sorted(set(item_ids)), chunk_size or personalize_settings.TASK_CHUNK_SIZE)
    for name in names:
        if len(parts) == 1:
            # one chunk: embed here, merge in its own task so it can retry alone
            embed_merge.delay([embed_chunk(name, parts[0])], name)
        else:
            chord(embed_chunk.s(name, part) for part in parts)(embed_merge.s(name))
    return {"items": len(item_ids), "strategies": names, "chunks": len(parts)}


@shared_task(**RETRY)
def embed_catalog(chunk_size: int | None = None) -> dict[str, Any]:
    """Embed every available item again (after changing the text mapping, say)."""
    ids = list(Item.objects.filter(available=True).order_by("pk").values_list("pk", flat=True))
    return embed_items(ids, chunk_size=chunk_size)


@shared_task(**RETRY)
def embed_chunk(strategy: str, item_ids: list[int]) -> str | None:
    """Embed one chunk into a partial artifact in storage; returns its path."""
    return embedding.embed_part(strategy, item_ids)


@shared_task(bind=True, **RETRY)
def embed_merge(self: Any, paths: list[str | None], strategy: str) -> dict[str, Any]:
    """Merge the chunks' partial artifacts into a new live version (the chord callback)."""
    try:
        version = embedding.merge_parts(strategy, paths)
    except TrainingInProgress as exc:
        # a full training is running; merge afterwards (it may not include these items)
        raise self.retry(exc=exc, countdown=60) from exc
    if version is None:
        return {"strategy": strategy, "status": "nothing to embed"}
    return _summary(version, strategy)


@shared_task(**RETRY)
def embed_pending() -> dict[str, Any]:
    """Embed the items queued by catalog changes since the last run (debounced)."""
    return embed_items(embedding.take_pending())


def workers_running(timeout: float = 1.0) -> bool:
    """Whether any Celery worker answers a ping within ``timeout`` seconds.

    ``False`` when tasks run eagerly (no worker is needed) or the broker is unreachable.
    """
    app = train_strategy.app
    if app.conf.task_always_eager:
        return False
    try:
        return bool(app.control.ping(timeout=timeout))
    except Exception:  # broker down or misconfigured: nobody would take the task
        logger.info("No Celery broker reachable; training in the foreground", exc_info=True)
        return False
