"""Map any host model to Item fields from a settings mapping.

``PERSONALIZE["CATALOG"]`` maps a model label to a field mapping::

    "CATALOG": {
        "shop.Product": {
            "title": "name",
            "text": ["name", "description"],
            "categories": "category.name",
            "available": "in_stock",
            "attributes": ["price", "brand"],
        }
    }

Each value is a dotted attribute path (``category.name``), a list of paths
(texts are joined, categories and attributes collected) or the name of a
method/property on the model. ``external_id`` defaults to the primary key,
``prefix`` is prepended to it so two catalog models cannot collide.

A path whose first step is a many-to-many relation of the model
(``categories.name`` on a model with ``categories = ManyToManyField(...)``, or
the accessor of a many-to-many defined on the other model) is mirrored when
that relation changes as well (:meth:`CatalogAdapter.many_to_many_links`):
sites such as django-oscar save a product's categories after the product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.db import models

from personalize.conf import personalize_settings

MAPPING_KEYS = frozenset(
    {"external_id", "prefix", "title", "text", "categories", "available", "attributes"}
)


def resolve_path(obj: Any, path: str) -> Any:
    """Follow a dotted attribute path, calling callables and tolerating missing links."""
    value = obj
    for part in path.split("."):
        if value is None:
            return None
        if isinstance(value, models.Manager):
            return [resolve_path(related, part) for related in value.all()]
        try:
            value = getattr(value, part)
        except ObjectDoesNotExist:
            return None
        if callable(value) and not isinstance(value, models.Manager):
            value = value()
    if isinstance(value, models.Manager):
        return [str(related) for related in value.all()]
    return value


@dataclass(frozen=True)
class ManyToManyLink:
    """A many-to-many relation that a catalog mapping reads, seen from the catalog model.

    Attributes:
        host: the catalog model.
        through: the relation's intermediate model (the sender of ``m2m_changed``).
        lookup: the relation's name in a query on ``host``
            (``host.objects.filter(**{lookup: other_pk})``).
        host_fields: on an explicit (not auto-created) intermediate model, the
            ``attname`` of each of its foreign keys to ``host``: its rows are
            saved and deleted like any model, without ``m2m_changed``.
    """

    host: type[models.Model]
    through: type[models.Model]
    lookup: str
    host_fields: tuple[str, ...] = ()


def _many_to_many_link(host: type[models.Model], name: str) -> ManyToManyLink | None:
    """The many-to-many relation of ``host`` whose attribute is ``name``, if it is one."""
    for relation in host._meta.get_fields():
        # declared on host, or on the other model (then ``name`` is its accessor here);
        # either way ``relation.name`` is what a query on host calls the relation
        declared = isinstance(relation, models.ManyToManyField) and relation.name == name
        reverse = (isinstance(relation, models.ManyToManyRel)
                   and relation.get_accessor_name() == name)
        if not (declared or reverse):
            continue
        through = getattr(host, name).through
        explicit = () if through._meta.auto_created else tuple(
            f.attname for f in through._meta.get_fields()
            if f.many_to_one and f.concrete and issubclass(host, f.related_model)
        )
        return ManyToManyLink(host, through, relation.name, explicit)
    return None


def _as_paths(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if spec is None:
        return []
    return [spec] if isinstance(spec, str) else list(spec)


def _flatten(values: list[Any]) -> list[str]:
    flat: list[str] = []
    for value in values:
        if value is None or value == "":
            continue
        if isinstance(value, list | tuple | set):
            flat.extend(_flatten(list(value)))
        else:
            flat.append(str(value))
    return flat


@dataclass(frozen=True)
class CatalogAdapter:
    """Turns one host model instance into the fields of its Item."""

    label: str
    mapping: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.label)

    def external_id(self, obj: models.Model) -> str:
        raw = resolve_path(obj, self.mapping.get("external_id", "pk"))
        return f"{self.mapping.get('prefix', '')}{raw}"

    def many_to_many_links(self) -> list[ManyToManyLink]:
        """The many-to-many relations the mapping's paths start with, one per relation."""
        model = self.model
        names = {path.split(".", 1)[0] for key, spec in self.mapping.items()
                 if key != "prefix" for path in _as_paths(spec) if isinstance(path, str)}
        links = [_many_to_many_link(model, name) for name in sorted(names)]
        return list({link.through: link for link in links if link is not None}.values())

    def item_fields(self, obj: models.Model) -> dict[str, Any]:
        """The Item field values for ``obj`` (without the link to the host object)."""
        mapping = self.mapping
        title_value = resolve_path(obj, mapping["title"]) if "title" in mapping else str(obj)
        texts = _flatten([resolve_path(obj, p) for p in _as_paths(mapping.get("text"))])
        categories = _flatten(
            [resolve_path(obj, p) for p in _as_paths(mapping.get("categories"))]
        )
        attributes = {
            p.replace(".", "_"): _jsonable(resolve_path(obj, p))
            for p in _as_paths(mapping.get("attributes"))
        }
        available = resolve_path(obj, mapping["available"]) if "available" in mapping else True
        title = "" if title_value is None else str(title_value)
        return {
            "title": title[:500],
            "text": "\n".join(texts) if texts else title,
            "categories": list(dict.fromkeys(categories)),
            "attributes": attributes,
            "available": bool(available),
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def get_adapters() -> list[CatalogAdapter]:
    """One adapter per configured catalog model, in settings order."""
    return list(_adapters(tuple(
        (label, tuple(sorted((k, _freeze(v)) for k, v in (mapping or {}).items())))
        for label, mapping in personalize_settings.CATALOG.items()
    )))


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@cache
def _adapters(
    frozen: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...],
) -> tuple[CatalogAdapter, ...]:
    return tuple(CatalogAdapter(label, dict(items)) for label, items in frozen)


def get_adapter_for(model: type[models.Model]) -> CatalogAdapter | None:
    """The adapter configured for ``model``, or ``None`` if it is not a catalog model."""
    label = model._meta.label_lower
    for adapter in get_adapters():
        if adapter.label.lower() == label:
            return adapter
    return None
