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
