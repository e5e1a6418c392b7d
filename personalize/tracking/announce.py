"""Announcing committed events to the rest of the app."""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from personalize.backends.cache import CacheBatch
from personalize.models import Event
from personalize.signals import event_recorded


def announce_events(subject_ids: Set[int], item_ids: Set[int], count: int,
                    sender: Any = None) -> None:
    """Send ``event_recorded`` for events already committed.

    The receivers queue their cache writes (block generations, the retrain
    counter) on one :class:`~personalize.backends.cache.CacheBatch`, sent after
    the last receiver: one round trip per request instead of one per receiver.
    """
    batch = CacheBatch()
    event_recorded.send(sender=sender or Event, subject_ids=subject_ids, item_ids=item_ids,
                        count=count, cache_writes=batch)
    batch.send()
