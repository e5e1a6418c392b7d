"""Signal receivers that keep the recommendation cache honest, connected from ``AppConfig.ready``.

* ``event_recorded`` and any consent decision: the subjects' generation
  moves, so their cached blocks stop matching.
* ``subject_erased``, a Subject deleted or merged into another: its
  generation becomes a tombstone, so processes that remember its pk for a
  request (:mod:`personalize.serving.subjects`) resolve that request again.
* ``items_changed``, ``model_activated``, an Item or Placement saved or
  deleted: the global generation moves (after the transaction commits, once
  per transaction however many rows changed).
* A setting that makes Django reload its translation catalogs (tests): the
  explanation messages serving caches per language are dropped; likewise
  the lean cache readers when django-redis's ``CLOSE_CONNECTION`` changes.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.signals import setting_changed
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from personalize import cacheread, signals
from personalize.cachebatch import CacheBatch
from personalize.serving import cache as block_cache


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


def _gone(subject_id: int) -> None:
    from personalize.serving.subjects import forget_subject

    forget_subject(subject_id)
    block_cache.tombstone_subjects([subject_id])


def on_subject_erased(sender: Any = None, subject_id: Any = None, **kwargs: Any) -> None:
    """Receiver of ``subject_erased``: blocks stop matching, remembered pks are re-checked."""
    if subject_id is not None:
        _gone(int(subject_id))


def on_subject_deleted(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    """``post_delete`` of Subject."""
    if instance is not None and instance.pk is not None:
        _gone(int(instance.pk))


def on_subject_saved(sender: Any, instance: Any = None, raw: bool = False, **kwargs: Any) -> None:
    """``post_save`` of Subject: a subject merged into another stops standing for anyone."""
    if instance is not None and getattr(instance, "merged_into_id", None) is not None:
        _gone(int(instance.pk))


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


def on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    """Drop what was worked out from a setting that changed (tests).

    Explanations cached per language go when Django reloads its catalogs;
    the lean cache readers go with django-redis's ``CLOSE_CONNECTION``.
    """
    from personalize.serving.service import TRANSLATION_SETTINGS, forget_translations

    if setting in TRANSLATION_SETTINGS:
        forget_translations()
    elif setting == "DJANGO_REDIS_CLOSE_CONNECTION":
        cacheread.forget_readers()


def connect_serving_signals() -> None:
    """Connect every serving receiver (idempotent)."""
    from personalize.models import ConsentRecord, Item, Placement, Subject

    uid = "personalize.serving"
    setting_changed.connect(on_setting_changed, dispatch_uid=f"{uid}.settings")
    signals.event_recorded.connect(on_event_recorded, dispatch_uid=f"{uid}.events")
    signals.subject_erased.connect(on_subject_erased, dispatch_uid=f"{uid}.erased")
    signals.items_changed.connect(on_catalog_or_model_change, dispatch_uid=f"{uid}.items")
    signals.model_activated.connect(on_catalog_or_model_change, dispatch_uid=f"{uid}.model")
    for model in (Item, Placement):
        label = model._meta.label_lower
        post_save.connect(on_row_changed, sender=model, dispatch_uid=f"{uid}.save.{label}")
        post_delete.connect(on_row_changed, sender=model, dispatch_uid=f"{uid}.delete.{label}")
    post_save.connect(on_consent_recorded, sender=ConsentRecord, dispatch_uid=f"{uid}.consent")
    post_save.connect(on_subject_saved, sender=Subject, dispatch_uid=f"{uid}.subject.save")
    post_delete.connect(on_subject_deleted, sender=Subject, dispatch_uid=f"{uid}.subject.delete")
