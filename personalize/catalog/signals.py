"""Signal receivers that keep Items in sync when host objects are saved or deleted.

Besides ``post_save`` / ``post_delete`` of each catalog model, a change of a
many-to-many relation that the catalog mapping reads (``"categories":
"categories.name"``) re-syncs the host objects it touched: ``m2m_changed`` of
the relation's intermediate model, and ``post_save`` / ``post_delete`` of an
explicit intermediate model (django-oscar's ``ProductCategory``), whose rows
are written without ``m2m_changed``. Receivers look the mapping up when they
run, so a model that left ``PERSONALIZE["CATALOG"]`` is no longer mirrored.

A receiver never breaks the host's save: a mapping that cannot be read or a
failed Item write is logged (naming the setting) and the host's own write
stands. ``manage.py check`` reports the mapping mistakes the check can see
(``personalize.E004``) and ``manage.py personalize_sync_catalog`` mirrors the
catalog again once they are fixed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.core.signals import setting_changed
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save

from personalize.catalog.adapter import CatalogMappingError, ManyToManyLink, get_adapters
from personalize.catalog.sync import remove_object, sync_object, sync_objects

logger = logging.getLogger(__name__)

#: Host pks linked to an object whose relation is being cleared, from
#: ``pre_clear`` to ``post_clear`` (``post_clear`` no longer knows them).
_clearing = threading.local()


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


def many_to_many_links(through: type[models.Model]) -> list[ManyToManyLink]:
    """The catalog's many-to-many relations whose intermediate model is ``through``, now."""
    links: list[ManyToManyLink] = []
    for adapter in get_adapters():
        try:
            links.extend(link for link in adapter.many_to_many_links() if link.through is through)
        except LookupError:  # a model that is not installed: personalize.E003 says so
            continue
    return links


def _resync(host: type[models.Model], pks: Iterable[Any]) -> None:
    def resync() -> None:
        report = sync_objects(host, pks)
        logger.debug("Catalog relation changed: %s items of %s re-synced (%s)",
                     report.created + report.updated, host._meta.label, report)

    _guarded(_label(host), f"change of a {_label(host)} relation", resync)


def _on_m2m_changed(
    sender: type[models.Model], instance: models.Model, action: str,
    model: type[models.Model], pk_set: set[Any] | None = None, **kwargs: Any,
) -> None:
    """``m2m_changed``: the host objects on either side of the change are synced again."""
    if action not in ("pre_clear", "post_add", "post_remove", "post_clear"):
        return
    for link in many_to_many_links(sender):
        host = link.host
        if isinstance(instance, host):  # product.categories.add(...)
            if action != "pre_clear":
                _resync(host, [instance.pk])
            continue
        if not issubclass(model, host):
            continue
        # category.products.add(...): pk_set holds the products
        key = (sender, link.lookup, instance.pk)
        pending: dict[Any, list[Any]] = _clearing.__dict__.setdefault("pending", {})
        if action == "pre_clear":
            pending[key] = list(host._default_manager.filter(**{link.lookup: instance.pk})
                                .values_list("pk", flat=True))
        elif action == "post_clear":
            _resync(host, pending.pop(key, []))
        else:
            _resync(host, pk_set or ())


def _on_through_row_changed(
    sender: type[models.Model], instance: models.Model, raw: bool = False, **kwargs: Any
) -> None:
    """``post_save`` / ``post_delete`` of an explicit intermediate model: sync its host object."""
    if raw:
        return
    for link in many_to_many_links(sender):
        pks = [getattr(instance, attname) for attname in link.host_fields]
        _resync(link.host, [pk for pk in pks if pk is not None])


def connect_catalog_signals() -> None:
    """Connect the receivers for every configured catalog model (idempotent).

    Connected again whenever the ``PERSONALIZE`` setting changes, so a catalog
    model added later (``override_settings`` in tests) is mirrored too.
    """
    setting_changed.connect(_reconnect_on_change, dispatch_uid="personalize-catalog-settings")
    for adapter in get_adapters():
        try:
            model = adapter.model
            links = adapter.many_to_many_links()
        except LookupError:
            continue  # reported by the personalize.E003 system check
        uid = f"personalize-catalog-{adapter.label.lower()}"
        post_save.connect(_on_save, sender=model, dispatch_uid=uid + "-save")
        post_delete.connect(_on_delete, sender=model, dispatch_uid=uid + "-delete")
        for link in links:
            through = f"personalize-catalog-{link.through._meta.label_lower}"
            m2m_changed.connect(_on_m2m_changed, sender=link.through,
                                dispatch_uid=through + "-m2m")
            if link.host_fields:
                post_save.connect(_on_through_row_changed, sender=link.through,
                                  dispatch_uid=through + "-save")
                post_delete.connect(_on_through_row_changed, sender=link.through,
                                    dispatch_uid=through + "-delete")


def _reconnect_on_change(*, setting: str, **kwargs: Any) -> None:
    # a catalog model added to the settings later (tests, override_settings) is mirrored too
    if setting != "PERSONALIZE":
        return
    try:
        connect_catalog_signals()
    except Exception:  # invalid settings: the system checks (E001, E003) name the mistake
        logger.debug("Catalog receivers not reconnected", exc_info=True)
