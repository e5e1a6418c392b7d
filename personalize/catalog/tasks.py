"""Celery tasks of the catalog package: the scheduled catalog sync.

The signal receivers keep Items in step with every save, delete and
many-to-many change made through the ORM; a ``queryset.update()``, a bulk
import or a change to a related object a mapping path reaches through
(renaming a category) sends no signal. The periodic :func:`sync_catalog`
repairs those: ``beat_schedule()`` schedules it at ``CATALOG_SYNC_SCHEDULE``
(daily at 02:30 by default, before the nightly training).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

from personalize.catalog import sync

__all__ = ["sync_catalog"]

logger = logging.getLogger(__name__)


@shared_task(ignore_result=False)
def sync_catalog() -> dict[str, int]:
    """Rebuild every Item from the configured host models (``sync.sync_catalog``).

    Returns:
        ``{"created", "updated", "unchanged", "deleted"}``.
    """
    report = sync.sync_catalog()
    logger.info("Catalog synced: %s", report)
    return asdict(report)
