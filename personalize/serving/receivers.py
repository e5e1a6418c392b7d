"""Signal receivers that keep the recommendation cache honest, connected from ``AppConfig.ready``.

* ``event_recorded`` and any consent decision: the subjects' generation
  moves, so their cached blocks stop matching.
* ``subject_erased``, a Subject deleted or merged into another: its
  generation moves too, and every loaded model forgets the subject
  (:func:`personalize.serving.loader.forget_subject`).
* ``items_changed``, ``model_activated``, an Item, Placement, Experiment,
  Variant or AllocationSnapshot saved or deleted: the global generation moves
  (after the transaction commits, once per transaction however many rows
  changed). An activated ModelVersion makes this process re-read the
  strategy's version pointer at once.
* A change of the ``PERSONALIZE``, ``STORAGES`` or ``CACHES`` setting (tests):
  the loaded models are dropped, to be loaded again under the new settings.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from personalize import signals
from personalize.backends.cache import CacheBatch
from personalize.experiments.assignment import forget_assignments
from personalize.models import (
    AllocationSnapshot,
    ConsentRecord,
    Experiment,
    Item,
    ModelVersion,
    Placement,
    Subject,
    Variant,
)
from personalize.models.training import ModelStatus
from personalize.serving import cache as block_cache
from personalize.serving import loader


class _Batch:
    """Coalesces the global bumps of one transaction into one cache write.

    Every change registers ``run`` with ``on_commit`` (cheap: a list append);
    the first ``run`` after the commit bumps, the others return at once. A
    rolled-back transaction never runs its callbacks, so its batch carries over
    to the next commit.
    """

    def __init__(self) -> None:
        self.done = False

    def run(self) -> None:
        if not self.done:
            self.done = True
            block_cache.bump_global()


_local = threading.local()


def _bump_global_after_commit() -> None:
    batch = getattr(_local, "batch", None)
    if batch is None or batch.done:
        batch = _local.batch = _Batch()
    transaction.on_commit(batch.run)


def on_event_recorded(sender: Any = None, subject_ids: Any = None,
                      cache_writes: CacheBatch | None = None, **kwargs: Any) -> None:
    """Receiver of ``event_recorded``: the subjects' blocks are recomputed on next view."""
    if subject_ids:
        block_cache.bump_subjects(subject_ids, batch=cache_writes)


def on_subject_erased(sender: Any = None, subject_id: Any = None, **kwargs: Any) -> None:
    """Receiver of ``subject_erased``: blocks stop matching, loaded models forget the subject."""
    if subject_id is not None:
        block_cache.bump_subjects([int(subject_id)])
        loader.forget_subject(int(subject_id))


def on_subject_deleted(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    """``post_delete`` of Subject: its blocks stop matching."""
    if instance is not None and instance.pk is not None:
        block_cache.bump_subjects([int(instance.pk)])


def on_subject_saved(sender: Any, instance: Any = None, raw: bool = False, **kwargs: Any) -> None:
    """``post_save`` of Subject: the blocks of a subject merged into another stop matching.

    The merge keeps the earlier experiment assignment of the two subjects: the
    cached assignments of both are dropped once it has committed, and read
    back from the database.
    """
    if instance is not None and getattr(instance, "merged_into_id", None) is not None:
        block_cache.bump_subjects([int(instance.pk)])
        subjects = [int(instance.pk), int(instance.merged_into_id)]
        transaction.on_commit(lambda: forget_assignments(subjects))


def on_model_version_saved(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    """``post_save`` of ModelVersion: a version activated in this process serves here at once.

    Other processes notice at their next pointer check; this one need not wait
    for the commit (its own reads already see the new row).
    """
    if instance is not None and instance.status == ModelStatus.ACTIVE:
        loader.invalidate_local(instance.strategy)


def on_catalog_or_model_change(sender: Any = None, **kwargs: Any) -> None:
    """Receiver of ``items_changed`` and ``model_activated``."""
    _bump_global_after_commit()


def on_row_changed(sender: Any, instance: Any = None, raw: bool = False, **kwargs: Any) -> None:
    """``post_save`` / ``post_delete`` of Item, Placement and the experiment models."""
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


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """A model loaded under old settings must not keep serving after an override (tests)."""
    if setting in ("PERSONALIZE", "STORAGES", "CACHES"):
        loader.clear_loaded()


def connect_serving_signals() -> None:
    """Connect every serving receiver (idempotent)."""
    uid = "personalize.serving"
    setting_changed.connect(on_setting_changed, dispatch_uid=f"{uid}.settings")
    signals.event_recorded.connect(on_event_recorded, dispatch_uid=f"{uid}.events")
    signals.subject_erased.connect(on_subject_erased, dispatch_uid=f"{uid}.erased")
    signals.items_changed.connect(on_catalog_or_model_change, dispatch_uid=f"{uid}.items")
    signals.model_activated.connect(on_catalog_or_model_change, dispatch_uid=f"{uid}.model")
    signals.model_activated.connect(loader.on_model_activated, dispatch_uid=f"{uid}.pointer")
    for model in (Item, Placement, Experiment, Variant, AllocationSnapshot):
        label = model._meta.label_lower
        post_save.connect(on_row_changed, sender=model, dispatch_uid=f"{uid}.save.{label}")
        post_delete.connect(on_row_changed, sender=model, dispatch_uid=f"{uid}.delete.{label}")
    post_save.connect(on_consent_recorded, sender=ConsentRecord, dispatch_uid=f"{uid}.consent")
    post_save.connect(on_model_version_saved, sender=ModelVersion,
                      dispatch_uid=f"{uid}.model_version")
    post_save.connect(on_subject_saved, sender=Subject, dispatch_uid=f"{uid}.subject.save")
    post_delete.connect(on_subject_deleted, sender=Subject, dispatch_uid=f"{uid}.subject.delete")
