"""Celery tasks of the serving verb: precomputed top-N lists, scored in chunks over workers.

Both are built on :class:`personalize.training.tasks.ResilientTask` (acknowledged
late, run again when their worker dies, retried on transient errors).
"""

from __future__ import annotations

from celery import group, shared_task

from personalize.conf import personalize_settings
from personalize.serving import precompute
from personalize.training.tasks import ResilientTask, chunks

__all__ = ["precompute_chunk", "precompute_top_n"]


@shared_task(base=ResilientTask)
def precompute_top_n(strategy: str | None = None, k: int = 50, active_days: int = 30,
                     chunk_size: int | None = None) -> dict[str, int]:
    """Precompute the top ``k`` of every subject active in the last ``active_days`` days.

    The subjects are cut into chunks of ``TASK_CHUNK_SIZE`` and scored by a
    Celery group, so more workers finish sooner.
    """
    name = strategy or personalize_settings.DEFAULT_STRATEGY
    ids = precompute.active_subject_ids(active_days)
    parts = chunks(ids, chunk_size or personalize_settings.TASK_CHUNK_SIZE)
    if parts:
        group(precompute_chunk.s(name, part, k) for part in parts).apply_async()
    return {"subjects": len(ids), "chunks": len(parts)}


@shared_task(base=ResilientTask)
def precompute_chunk(strategy: str, subject_ids: list[int], k: int = 50) -> int:
    """Score one chunk of subjects and store their lists."""
    return precompute.precompute(strategy, subject_ids, k)
