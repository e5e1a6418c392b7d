"""Keep Items in step with host objects: one object on save, or the whole catalog."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction

from personalize.catalog.adapter import CatalogAdapter, get_adapter_for, get_adapters
from personalize.models import Item
from personalize.models.catalog import content_hash

logger = logging.getLogger(__name__)

#: Called after an item's content changed (embeddings re-embed it); set by plugins.
item_changed_hooks: list[Callable[[Item], None]] = []

CHUNK_SIZE = 1000


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def __str__(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.deleted} deleted"
        )


def _notify_changed(item: Item) -> None:
    for hook in item_changed_hooks:
        try:
            hook(item)
        except Exception:
            logger.exception("Item-changed hook %r failed for %s", hook, item.external_id)


def sync_object(obj: models.Model) -> Item | None:
    """Create or update the Item mirroring ``obj``; ``None`` if its model is not in the catalog.

    The writes run in a savepoint, so a failure here leaves the caller's
    transaction usable (the host's own save is not rolled back with it).

    Raises:
        CatalogMappingError: a mapped path cannot be read from ``obj``.
    """
    adapter = get_adapter_for(type(obj))
    if adapter is None:
        return None
    with transaction.atomic():
        return _sync_one(adapter, obj)


def _sync_one(adapter: CatalogAdapter, obj: models.Model) -> Item:
    content_type = ContentType.objects.get_for_model(obj)
    # Read the row back: in-memory values are not normalised the way the database
    # returns them (a default 0 vs Decimal("0.00")), and the content hash must
    # come out the same as a full sync's.
    obj = type(obj)._base_manager.get(pk=obj.pk)
    fields = adapter.item_fields(obj)
    external_id = adapter.external_id(obj)
    item = Item.objects.filter(content_type=content_type, object_id=str(obj.pk)).first()
    if item is None:
        item = Item.objects.filter(external_id=external_id).first() or Item(
            external_id=external_id
        )
    old_hash = item.content_hash
    item.external_id = external_id
    item.content_type = content_type
    item.object_id = str(obj.pk)
    for name, value in fields.items():
        setattr(item, name, value)
    item.save()
    if item.content_hash != old_hash:
        transaction.on_commit(lambda: _notify_changed(item))
    return item


def sync_objects(model: type[models.Model], pks: Iterable[Any]) -> int:
    """Re-mirror the objects of ``model`` with these primary keys; returns how many."""
    if get_adapter_for(model) is None:
        return 0
    done = 0
    for obj in model._base_manager.filter(pk__in=list(pks)).order_by("pk"):
        sync_object(obj)
        done += 1
    return done


def remove_object(obj: models.Model) -> int:
    """Delete the Item mirroring ``obj``; returns how many rows went (in a savepoint)."""
    if get_adapter_for(type(obj)) is None:
        return 0
    content_type = ContentType.objects.get_for_model(obj)
    with transaction.atomic():
        _, per_model = Item.objects.filter(
            content_type=content_type, object_id=str(obj.pk)
        ).delete()
    return per_model.get(Item._meta.label, 0)


def count_catalog() -> int:
    """How many host objects a full sync will visit."""
    return sum(adapter.model._default_manager.count() for adapter in get_adapters())


def _chunks(adapter: CatalogAdapter) -> Iterator[list[models.Model]]:
    chunk: list[models.Model] = []
    for obj in adapter.model._default_manager.order_by("pk").iterator(chunk_size=CHUNK_SIZE):
        chunk.append(obj)
        if len(chunk) >= CHUNK_SIZE:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


UPDATE_FIELDS = [
    "external_id", "title", "text", "categories", "primary_category", "attributes",
    "available", "content_hash",
]


def sync_catalog(progress: Callable[[int], Any] | None = None) -> SyncReport:
    """Rebuild every Item from the configured host models, in chunks of bulk writes.

    Args:
        progress: called with the number of host objects done after each chunk
            (the management command passes a progress bar's ``update``).

    Returns:
        Counts of created, updated, unchanged and deleted items.

    Raises:
        CatalogMappingError: a mapped path cannot be read from a host object.
    """
    report = SyncReport()
    for adapter in get_adapters():
        content_type = ContentType.objects.get_for_model(adapter.model)
        seen: set[str] = set()
        for chunk in _chunks(adapter):
            _sync_chunk(adapter, content_type, chunk, report, seen)
            if progress is not None:
                progress(len(chunk))
        stored = Item.objects.filter(content_type=content_type, object_id__isnull=False)
        stale_ids = sorted(
            {oid for oid in stored.values_list("object_id", flat=True) if oid is not None} - seen
        )
        for start in range(0, len(stale_ids), CHUNK_SIZE):
            _, per_model = Item.objects.filter(
                content_type=content_type, object_id__in=stale_ids[start : start + CHUNK_SIZE]
            ).delete()
            report.deleted += per_model.get(Item._meta.label, 0)
    return report


def _sync_chunk(
    adapter: CatalogAdapter,
    content_type: ContentType,
    chunk: list[models.Model],
    report: SyncReport,
    seen: set[str],
) -> None:
    object_ids = [str(obj.pk) for obj in chunk]
    seen.update(object_ids)
    existing = {
        item.object_id: item
        for item in Item.objects.filter(content_type=content_type, object_id__in=object_ids)
    }
    to_create: list[Item] = []
    to_update: list[Item] = []
    changed: list[Item] = []
    for obj in chunk:
        fields = adapter.item_fields(obj)
        fields["external_id"] = adapter.external_id(obj)
        fields["primary_category"] = fields["categories"][0] if fields["categories"] else ""
        fields["content_hash"] = content_hash(
            fields["title"], fields["text"], fields["categories"], fields["attributes"]
        )
        item = existing.get(str(obj.pk))
        if item is None:
            to_create.append(Item(content_type=content_type, object_id=str(obj.pk), **fields))
            continue
        if all(getattr(item, name) == value for name, value in fields.items()):
            report.unchanged += 1
            continue
        if item.content_hash != fields["content_hash"]:
            changed.append(item)
        for name, value in fields.items():
            setattr(item, name, value)
        to_update.append(item)
    with transaction.atomic():
        Item.objects.bulk_create(to_create, batch_size=CHUNK_SIZE)
        Item.objects.bulk_update(to_update, UPDATE_FIELDS, batch_size=CHUNK_SIZE)
    report.created += len(to_create)
    report.updated += len(to_update)
    for item in changed:
        _notify_changed(item)
