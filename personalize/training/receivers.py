"""Signal receivers of the training package, connected from ``AppConfig.ready``."""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed

from personalize import signals
from personalize.catalog import sync
from personalize.training import active, embedding, triggers


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # A strategy built from old settings must not keep serving after an override.
    if setting in ("PERSONALIZE", "STORAGES", "CACHES"):
        active.clear_loaded()


def connect_training_signals() -> None:
    """Count events, forget erased subjects, embed changed items (idempotent)."""
    signals.event_recorded.connect(triggers.on_event_recorded,
                                   dispatch_uid="personalize.training.threshold")
    signals.subject_erased.connect(active.on_subject_erased,
                                   dispatch_uid="personalize.training.erase")
    signals.items_changed.connect(embedding.on_items_changed,
                                  dispatch_uid="personalize.training.embed")
    if embedding.on_item_changed not in sync.item_changed_hooks:
        sync.item_changed_hooks.append(embedding.on_item_changed)
    setting_changed.connect(_on_setting_changed, dispatch_uid="personalize.training.settings")
