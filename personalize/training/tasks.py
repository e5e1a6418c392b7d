"""Celery tasks of the training verb: thin callers of the service modules.

The app ships ``@shared_task`` functions; the site's Celery app (configured from
Django settings with the ``CELERY_`` namespace) discovers them through
``personalize.tasks``. Every task is idempotent: a training re-delivered after
a worker crash returns the version already trained on the same data, chunk jobs
overwrite the same cache keys or upsert the same rows. So every task is built
on :class:`ResilientTask`: acknowledged only once it finished, run again when
its worker dies, retried with backoff when the database, the broker or the
cache is briefly unreachable.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, chord, group, shared_task
from celery.exceptions import Reject

from personalize.conf import personalize_settings
from personalize.models import Item
from personalize.strategies.registry import strategy_names
from personalize.training import embedding, service, triggers
from personalize.training.locks import LockLost, TrainingInProgress
from personalize.training.service import TRANSIENT_ERRORS, WorkerKeepsDying

logger = logging.getLogger(__name__)

__all__ = [
    "ResilientTask",
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


class ResilientTask(Task):
    """The base of the SDK's tasks: a task survives its worker and a broker or cache blip.

    * ``acks_late``: the message is acknowledged when the task has finished,
      so a worker that dies mid-task leaves it to be delivered again.
    * ``retry_on_worker_lost`` (Celery 5.7+) sends a task whose worker process
      died again like a retry (counted in ``max_retries``, after
      ``default_retry_delay`` seconds); ``reject_on_worker_lost`` puts it back
      on the queue where retrying is not available.
    * ``autoretry_for`` the transient errors
      (:data:`personalize.training.service.TRANSIENT_ERRORS`), with
      exponential backoff and jitter, up to 8 times, at most 10 minutes apart.
    * A retry that cannot be sent (the broker is down too) puts the message
      back on the queue instead of dropping it (:meth:`retry`).
    """

    acks_late = True
    reject_on_worker_lost = True
    retry_on_worker_lost = True
    default_retry_delay = 10
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 5
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 8

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        """Celery's ``retry``; a retry that cannot be sent requeues the message.

        Celery rejects the message *without* requeueing it when sending the
        retry fails, so an outage of the broker during an outage of the cache
        would lose the task. It goes back on the queue instead (or stays
        unacknowledged until the broker is back, and is then delivered again).
        """
        try:
            return super().retry(*args, **kwargs)
        except Reject as reject:
            if reject.requeue or not self.acks_late:
                raise
            logger.warning("Cannot send the retry of %s[%s] (%s); putting it back on the queue",
                           self.name, self.request.id, reject.reason)
            raise Reject(reject.reason, requeue=True) from reject


def chunks(ids: list[Any], size: int) -> list[list[Any]]:
    """``ids`` cut into lists of at most ``size`` (one task each)."""
    size = max(1, int(size))
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def _summary(version: Any, name: str) -> dict[str, Any]:
    return {
        "strategy": name, "version": version.version, "status": version.status,
        "metrics": version.metrics, "note": version.note,
    }


def _rerun(task: Task) -> bool:
    """Whether this run of ``task`` is not its first: re-delivered, or a retry."""
    request = task.request
    return bool(request.retries) or bool((request.delivery_info or {}).get("redelivered"))


@shared_task(bind=True, base=ResilientTask)
def train_strategy(self: Task, name: str, force: bool = False) -> dict[str, Any]:
    """Train one strategy (see :func:`personalize.training.service.train_strategy`).

    A first delivery that finds another training of the strategy running is
    done ("already running"). A re-delivered or retried one (its worker died,
    or it failed on a transient error) finds its own dead run's lock until
    that expires, so it retries after ``TRAINING_LOCK_TTL`` seconds instead of
    being dropped.

    Returns:
        ``{"strategy", "version", "status", "metrics", "note"}``, or
        ``{"strategy", "status": "already running"}`` when another training of
        the same strategy holds the lock, or ``{"strategy", "status": "failed",
        "note"}`` when a re-delivery is given up (the worker keeps dying).
    """
    rerun = _rerun(self)
    try:
        version = service.train_strategy(name, force=force, rerun=rerun)
    except LockLost as exc:
        logger.warning("%s", exc)
        return {"strategy": name, "status": "already running"}
    except TrainingInProgress as exc:
        if rerun and self.request.retries < self.max_retries:
            logger.info("Training of %s is locked, maybe by this task's own run that died; "
                        "retrying once the lock has expired", name)
            raise self.retry(exc=exc, countdown=float(personalize_settings.TRAINING_LOCK_TTL)
                             ) from exc
        logger.info("Training of %s is already running; skipped", name)
        return {"strategy": name, "status": "already running"}
    except WorkerKeepsDying as exc:
        logger.error("%s", exc)
        return {"strategy": name, "status": "failed", "note": str(exc)}
    return _summary(version, name)


@shared_task(base=ResilientTask)
def train_all(force: bool = False) -> list[str]:
    """Queue a training of every configured strategy, in parallel (one task each)."""
    names = strategy_names()
    group(train_strategy.s(name, force=force) for name in names).apply_async()
    return names


@shared_task(base=ResilientTask)
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


@shared_task(base=ResilientTask)
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


@shared_task(base=ResilientTask)
def embed_catalog(chunk_size: int | None = None) -> dict[str, Any]:
    """Embed every available item again (after changing the text mapping, say)."""
    ids = list(Item.objects.filter(available=True).order_by("pk").values_list("pk", flat=True))
    return embed_items(ids, chunk_size=chunk_size)


@shared_task(base=ResilientTask)
def embed_chunk(strategy: str, item_ids: list[int]) -> str | None:
    """Embed one chunk into a partial artifact in storage; returns its path."""
    return embedding.embed_part(strategy, item_ids)


@shared_task(bind=True, base=ResilientTask)
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


@shared_task(base=ResilientTask)
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
