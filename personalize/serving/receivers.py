"""Signal receivers that keep the recommendation cache honest, connected from ``AppConfig.ready``.

* ``event_recorded``, ``subject_erased`` and any consent decision: the
  subjects' generation moves, so their cached blocks stop matching.
* ``items_changed``, ``model_activated``, an Item or Placement saved or
  deleted: the global generation moves (after the transaction commits, once
  per transaction however many rows changed).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from personalize import signals
from personalize.serving import cache as block_cache

def _bump_global() -> None:
    block_cache.bump_global()


def _bump_global_after_commit() -> None:
    # One bump per transaction: a catalog sync saving thousands of items in one
    # atomic block must not write the counter thousands of times. (A rolled
    # back transaction drops its queue, and with it this callback.)
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        entry[1] is _bump_global for entry in connection.run_on_commit
    ):
        return
    transaction.on_commit(_bump_global)


def on_event_recorded(sender: Any = None, subject_ids: Any = None, **kwargs: Any) -> None:
    """Receiver of ``event_recorded``: the subjects' blocks are recomputed on next view."""
    if subject_ids:
        block_cache.bump_subjects(subject_ids)


def on_subject_erased(sender: Any = None, subject_id: Any = None, **kwargs: Any) -> None:
    """Receiver of ``subject_erased``."""
    if subject_id is not None:
        block_cache.bump_subjects([subject_id])


def on_catalog_or_model_change(sender: Any = None, **kwargs: Any) -> None:
    """Receiver of ``items_changed`` and ``model_activated``."""
    _bump_global_after_commit()


def on_row_changed(sender: Any, instance: Any = None, raw: bool = False, **kwargs: Any) -> None:
    """``post_save`` / ``post_delete`` of Item and Placement."""
    _bump_global_after_commit()


def on_consent_recorded(sender: Any, instance: Any = None, raw: bool = False,
                        **kwargs: Any) -> None:
    """``post_save`` of ConsentRecord: the subject's blocks depend on their consent."""
    subject_id = getattr(instance, "subject_id", None)
    if subject_id is None:
        return
    # Now, and again after commit: a block computed in between from the old
    # consent state must not survive.
    block_cache.bump_subjects([subject_id])
    transaction.on_commit(lambda: block_cache.bump_subjects([subject_id]))


def connect_serving_signals() -> None:
    """Connect every serving receiver (idempotent)."""
    from personalize.models import ConsentRecord, Item, Placement

    uid = "personalize.serving"
    signals.event_recorded.connect(on_event_recorded, dispatch_uid=f"{uid}.events")
    signals.subject_erased.connect(on_subject_erased, dispatch_uid=f"{uid}.erased")
    signals.items_changed.connect(on_catalog_or_model_change, dispatch_uid=f"{uid}.items")
    signals.model_activated.connect(on_catalog_or_model_change, dispatch_uid=f"{uid}.model")
    for model in (Item, Placement):
        label = model._meta.label_lower
        post_save.connect(on_row_changed, sender=model, dispatch_uid=f"{uid}.save.{label}")
        post_delete.connect(on_row_changed, sender=model, dispatch_uid=f"{uid}.delete.{label}")
    post_save.connect(on_consent_recorded, sender=ConsentRecord, dispatch_uid=f"{uid}.consent")
