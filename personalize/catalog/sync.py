"""Keep Items in step with host objects: one object on save, some objects, or the whole catalog.

The bulk paths (:func:`sync_catalog`, :func:`sync_objects`) write with
``bulk_create`` / ``bulk_update``, which send no ``post_save``; they send
``personalize.signals.items_changed`` instead, once per chunk after the commit,
with the pks of the items they created, updated or deleted, so cached blocks
and the serving catalog stop using the old rows at once.
"""

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
from personalize.signals import items_changed

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


def sync_objects(model: type[models.Model], pks: Iterable[Any]) -> SyncReport:
    """Create or update the Items of some host objects of ``model`` in bulk.

    For a change that touches many host objects at once (a category added to a
    thousand products): one chunk of bulk writes per :data:`CHUNK_SIZE`
    objects instead of a save per object. Pks of objects that do not exist
    (any more) are ignored; their Items are left to :func:`remove_object` and
    :func:`sync_catalog`.

    Returns:
        Counts of created, updated and unchanged items (``deleted`` is 0).
    """
    report = SyncReport()
    adapter = get_adapter_for(model)
    wanted = sorted(set(pks))
    if adapter is None or not wanted:
        return report
    content_type = ContentType.objects.get_for_model(adapter.model)
    seen: set[str] = set()
    for start in range(0, len(wanted), CHUNK_SIZE):
        chunk = list(adapter.model._default_manager.filter(
            pk__in=wanted[start:start + CHUNK_SIZE]).order_by("pk"))
        if chunk:
            _sync_chunk(adapter, content_type, chunk, report, seen)
    return report


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
            stale = Item.objects.filter(
                content_type=content_type, object_id__in=stale_ids[start : start + CHUNK_SIZE]
            )
            gone = list(stale.values_list("pk", flat=True))
            _, per_model = Item.objects.filter(pk__in=gone).delete()
            report.deleted += per_model.get(Item._meta.label, 0)
            _announce(gone)
    return report


def _announce(item_pks: list[int]) -> None:
    """``items_changed`` for ``item_pks`` once the current transaction commits."""
    if item_pks:
        transaction.on_commit(lambda: items_changed.send(sender=Item, item_ids=item_pks))


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
        created = [item.pk for item in to_create]
        if None in created:  # a database that does not return the new rows' pks
            created = list(Item.objects.filter(
                content_type=content_type,
                object_id__in=[item.object_id for item in to_create],
            ).values_list("pk", flat=True))
        _announce(created + [item.pk for item in to_update])
    report.created += len(to_create)
    report.updated += len(to_update)
    for item in changed:
        _notify_changed(item)
