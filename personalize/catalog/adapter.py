"""Map any host model to Item fields from a settings mapping.

``PERSONALIZE["CATALOG"]`` maps a model label to a field mapping::

    "CATALOG": {
        "shop.Product": {
            "title": "name",
            "text": ["name", "description"],
            "categories": "category.name",
            "available": "in_stock",
            "attributes": {"price": "price", "brand": "brand.name", "image": "image.url"},
        }
    }

Each value is a dotted attribute path (``category.name``), a list of paths
(texts are joined, categories collected) or the name of a method/property on
the model. ``attributes`` is a dict of attribute name -> path (or a list of
paths, each stored under its path with ``_`` for ``.``); they are stored as
JSON on the Item and shown with every recommendation (templates, REST API).
An empty file field (``image.url`` without an image) gives ``None``.
``external_id`` defaults to the primary key, ``prefix`` is prepended to it so
two catalog models cannot collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models.fields.files import FieldFile

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
        if isinstance(value, FieldFile) and not value:  # no file: its url would raise
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


def _as_paths(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if spec is None:
        return []
    return [spec] if isinstance(spec, str) else list(spec)


def attribute_paths(spec: Any) -> dict[str, str]:
    """The ``attributes`` mapping as ``{attribute name: path}``.

    A dict is taken as it is; a path or list of paths names each attribute
    after its path, with ``_`` for ``.`` (``category.name`` -> ``category_name``).
    """
    if isinstance(spec, dict):
        return {str(name): path for name, path in spec.items()}
    return {path.replace(".", "_"): path for path in _as_paths(spec)}


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

    def item_fields(self, obj: models.Model) -> dict[str, Any]:
        """The Item field values for ``obj`` (without the link to the host object)."""
        mapping = self.mapping
        title_value = resolve_path(obj, mapping["title"]) if "title" in mapping else str(obj)
        texts = _flatten([resolve_path(obj, p) for p in _as_paths(mapping.get("text"))])
        categories = _flatten(
            [resolve_path(obj, p) for p in _as_paths(mapping.get("categories"))]
        )
        attributes = {
            name: _jsonable(resolve_path(obj, path))
            for name, path in attribute_paths(mapping.get("attributes")).items()
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
    catalog = personalize_settings.CATALOG
    frozen = _freeze(catalog)
    adapters = _ADAPTERS.get(frozen)
    if adapters is None:
        if len(_ADAPTERS) >= 16:  # settings overridden many times (tests): start afresh
            _ADAPTERS.clear()
        adapters = _ADAPTERS[frozen] = tuple(
            CatalogAdapter(label, dict(mapping or {})) for label, mapping in catalog.items()
        )
    return list(adapters)


#: Adapters by the frozen form of the CATALOG setting they were built from.
_ADAPTERS: dict[Any, tuple[CatalogAdapter, ...]] = {}


def _freeze(value: Any) -> Any:
    """A hashable copy of a settings value (dicts and lists become tuples)."""
    if isinstance(value, dict):  # ordered: settings order is the adapters' order
        return ("dict", tuple((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def get_adapter_for(model: type[models.Model]) -> CatalogAdapter | None:
    """The adapter configured for ``model``, or ``None`` if it is not a catalog model."""
    label = model._meta.label_lower
    for adapter in get_adapters():
        if adapter.label.lower() == label:
            return adapter
    return None
