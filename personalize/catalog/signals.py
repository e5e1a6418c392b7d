"""Signal receivers that keep Items in sync when host objects are saved or deleted.

A receiver never breaks the host's save: a mapping that cannot be read or a
failed Item write is logged (naming the setting) and the host's own write
stands. ``manage.py check`` reports the mapping mistakes the check can see
(``personalize.E004``) and ``manage.py personalize_sync_catalog`` mirrors the
catalog again once they are fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from personalize.catalog.adapter import (
    CatalogMappingError,
    fields_by_name,
    get_adapters,
    mapping_paths,
)
from personalize.catalog.sync import remove_object, sync_object, sync_objects

logger = logging.getLogger(__name__)


def _guarded(label: str, what: str, action: Callable[[], Any]) -> None:
    """Run ``action``; log instead of raising, so the host's save goes through."""
    try:
        action()
    except CatalogMappingError as exc:
        logger.error(
            "%s. The %s went through; its Item was left as it was. Fix the mapping "
            "(`manage.py check` validates it), then run `manage.py personalize_sync_catalog`.",
            exc, what,
        )
    except Exception:
        logger.exception(
            "Mirroring a %s into its Item failed (PERSONALIZE['CATALOG'][%r]); the %s went "
            "through. `manage.py personalize_sync_catalog` mirrors the catalog again.",
            label, label, what,
        )


def _label(model: type[models.Model]) -> str:
    return model._meta.label


def _on_save(
    sender: type[models.Model], instance: models.Model, raw: bool = False, **kw: Any
) -> None:
    if raw:  # loaddata: fixtures are synced by personalize_sync_catalog instead
        return
    _guarded(_label(sender), f"save of {_label(sender)} {instance.pk!r}",
             partial(sync_object, instance))


def _on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    _guarded(_label(sender), f"delete of {_label(sender)} {instance.pk!r}",
             partial(remove_object, instance))


def _on_m2m_changed(
    catalog_model: type[models.Model],
    lookup: str,
    sender: type[models.Model],
    instance: models.Model,
    action: str,
    model: type[models.Model],
    pk_set: set[Any] | None,
    **kwargs: Any,
) -> None:
    """Re-mirror the catalog objects on either side of a changed many-to-many relation.

    The admin saves a product's many-to-many fields after its ``post_save``, so
    categories read through ``tags.name`` are right only once this runs.
    """
    label = _label(catalog_model)
    what = f"change of {label} {action.split('_', 1)[1]} relation"
    if isinstance(instance, catalog_model) and action.startswith("post_"):
        _guarded(label, what, partial(sync_object, instance))
    if not issubclass(model, catalog_model):
        return
    if action in ("post_add", "post_remove") and pk_set:
        _guarded(label, what, partial(sync_objects, catalog_model, set(pk_set)))
    elif action == "pre_clear" and not isinstance(instance, catalog_model):
        # After the clear the rows are gone: note whose they were now, mirror after commit.
        pks = list(catalog_model._base_manager.filter(**{lookup: instance})
                   .values_list("pk", flat=True))
        transaction.on_commit(
            partial(_guarded, label, what, partial(sync_objects, catalog_model, pks))
        )


def _many_to_many_links(model: type[models.Model], mapping: dict[str, Any]
                        ) -> dict[type[models.Model], str]:
    """Through model -> lookup from ``model`` for every many-to-many relation a path starts with."""
    fields = fields_by_name(model)
    links: dict[type[models.Model], str] = {}
    for _key, path in mapping_paths(mapping):
        field = fields.get(path.split(".")[0])
        if field is None or not field.many_to_many:
            continue
        if field.concrete:  # a ManyToManyField on the catalog model
            links[field.remote_field.through] = field.name
        else:  # the other model's ManyToManyField, reached through its accessor
            links[field.through] = field.name
    return links


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
        for through, lookup in _many_to_many_links(model, adapter.mapping).items():
            m2m_changed.connect(
                partial(_on_m2m_changed, model, lookup), sender=through, weak=False,
                dispatch_uid=f"{uid}-m2m-{through._meta.label_lower}",
            )
