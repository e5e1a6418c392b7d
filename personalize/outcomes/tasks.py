"""Celery task of the outcomes package: the scheduled rollup.

``beat_schedule()`` runs it at ``ROLLUP_SCHEDULE`` (hourly at minute 10 by
default). A run rewrites the days whose figures may still change, so running
it again, or after a worker died mid-run, is harmless: it is acknowledged
only once it finished and retried while the database or the cache is briefly
unreachable (:class:`~personalize.training.tasks.ResilientTask`).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from personalize.outcomes import rollup
from personalize.training.tasks import ResilientTask

__all__ = ["update_rollups"]

logger = logging.getLogger(__name__)


@shared_task(base=ResilientTask)
def update_rollups() -> dict[str, Any]:
    """Roll up what was shown and earned since the last run (:func:`rollup.run_rollup`).

    Returns:
        The run's report as a dict, or ``{"status": "already running"}`` when
        another process holds the rollup lock.
    """
    try:
        report = rollup.run_rollup()
    except rollup.RollupInProgress:
        logger.info("The rollups are already running; skipped")
        return {"status": "already running"}
    return {"status": "done", **report.as_dict()}
