"""Signal receivers that keep Items in sync when host objects are saved or deleted."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save

from personalize.catalog.adapter import get_adapters
from personalize.catalog.sync import remove_object, sync_object

logger = logging.getLogger(__name__)


def _on_save(
    sender: type[models.Model], instance: models.Model, raw: bool = False, **kw: Any
) -> None:
    if raw:  # loaddata: fixtures are synced by personalize_sync_catalog instead
        return
    sync_object(instance)


def _on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    remove_object(instance)


def connect_catalog_signals() -> None:
    """Connect the receivers for every configured catalog model (idempotent)."""
    for adapter in get_adapters():
        try:
            model = adapter.model
        except LookupError:
            continue  # reported by the personalize.E003 system check
        uid = f"personalize-catalog-{adapter.label.lower()}"
        post_save.connect(_on_save, sender=model, dispatch_uid=uid + "-save")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=uid + "-delete")
