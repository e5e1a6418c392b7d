"""Celery tasks of the consent package: event retention.

Schedule it with Celery beat (see docs/consent.md), for example::

    CELERY_BEAT_SCHEDULE = {
        "personalize-purge-expired-events": {
            "task": "personalize.consent.tasks.purge_expired_events",
            "schedule": crontab(hour=4, minute=30),
        },
    }
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from personalize.conf import personalize_settings
from personalize.models import Event

__all__ = ["purge_expired_events"]

logger = logging.getLogger(__name__)


def purge_events_before(cutoff: datetime, chunk_size: int) -> int:
    """Delete events with a timestamp before ``cutoff``, ``chunk_size`` rows per statement.

    Small chunks keep each transaction short, so a purge of millions of rows
    never locks the events table for long or bloats one transaction.

    Returns:
        How many events were deleted.
    """
    total = 0
    while True:
        ids = list(
            Event.objects.filter(timestamp__lt=cutoff)
            .order_by()
            .values_list("pk", flat=True)[:chunk_size]
        )
        if not ids:
            return total
        deleted, _ = Event.objects.filter(pk__in=ids).delete()
        total += deleted


@shared_task(
    ignore_result=False,
    # Deleting expired events again is harmless: acknowledged when done, run
    # again when its worker dies, retried while the database is unreachable.
    acks_late=True, reject_on_worker_lost=True, retry_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError), retry_backoff=30, retry_backoff_max=600,
    retry_jitter=True, max_retries=5,
)
def purge_expired_events() -> int:
    """Delete events older than ``PERSONALIZE['RETENTION_DAYS']`` (a no-op when ``None``).

    Events are dated by their ``timestamp`` (when the action happened). The
    consent ledger is kept: it is the record of what was agreed.

    Returns:
        How many events were deleted.
    """
    days = personalize_settings.RETENTION_DAYS
    if days is None:
        return 0
    cutoff = timezone.now() - timedelta(days=int(days))
    deleted = purge_events_before(cutoff, int(personalize_settings.RETENTION_CHUNK_SIZE))
    logger.info("Retention: deleted %d event(s) older than %d day(s)", deleted, days)
    return deleted
