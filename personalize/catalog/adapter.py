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

A path whose first step is a many-to-many relation of the model
(``categories.name`` on a model with ``categories = ManyToManyField(...)``, or
the accessor of a many-to-many defined on the other model) is mirrored when
that relation changes as well (:meth:`CatalogAdapter.many_to_many_links`):
sites such as django-oscar save a product's categories after the product.
"""

from __future__ import annotations

import math
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
    """Follow a dotted attribute path, calling callables and tolerating missing links.

    A many-to-many or reverse relation on the way gives a list: the rest of the
    path is followed from each related object (``tags.group.name``).
    """
    return _follow(obj, path.split("."))


def _follow(obj: Any, parts: list[str]) -> Any:
    value = obj
    for index, part in enumerate(parts):
        if value is None:
            return None
        if isinstance(value, FieldFile) and not value:  # no file: its url would raise
            return None
        if isinstance(value, models.Manager):
            rest = parts[index:]
            return [_follow(related, rest) for related in value.all()]
        try:
            value = getattr(value, part)
        except ObjectDoesNotExist:
            return None
        if callable(value) and not isinstance(value, models.Manager):
            value = value()
    if isinstance(value, models.Manager):
        return [str(related) for related in value.all()]
    return value


class CatalogMappingError(Exception):
    """A catalog mapping path could not be read from a host object.

    The message names the setting (``PERSONALIZE['CATALOG'][label][key]``), the
    path, the object and the underlying error.
    """

    def __init__(self, label: str, key: str, path: str, obj: Any, cause: BaseException) -> None:
        self.label, self.key, self.path = label, key, path
        self.setting = f"PERSONALIZE['CATALOG'][{label!r}][{key!r}]"
        pk = getattr(obj, "pk", None)
        super().__init__(
            f"{self.setting}: cannot read {path!r} from {label} {pk!r}: "
            f"{type(cause).__name__}: {cause}"
        )


def fields_by_name(model: type[models.Model]) -> dict[str, Any]:
    """The model's fields by the name a path uses: field names, ``attname`` and reverse accessors.

    A reverse relation is reached through its accessor (``product_set`` or the
    ``related_name``), the way :func:`resolve_path` follows it with ``getattr``.
    """
    names: dict[str, Any] = {}
    for model_field in model._meta.get_fields():
        if model_field.auto_created and not model_field.concrete and model_field.is_relation:
            accessor = model_field.get_accessor_name()  # type: ignore[union-attr]
            if accessor:
                names[accessor] = model_field
            continue
        names[model_field.name] = model_field
        attname = getattr(model_field, "attname", None)
        if attname:
            names.setdefault(attname, model_field)
    names.setdefault("pk", model._meta.pk)
    return names


def mapping_paths(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    """Every ``(mapping key, path)`` of a mapping (``external_id`` defaults to ``pk``)."""
    pairs = [("external_id", mapping.get("external_id", "pk"))]
    for key in ("title", "text", "categories", "available"):
        pairs.extend((key, path) for path in _as_paths(mapping.get(key)))
    attributes = attribute_paths(mapping.get("attributes"))
    pairs.extend(("attributes", path) for path in attributes.values())
    return [(key, path) for key, path in pairs if isinstance(path, str)]


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

    def _read(self, obj: models.Model, key: str, path: str) -> Any:
        try:
            return resolve_path(obj, path)
        except Exception as exc:  # a property or method of the host can raise anything
            raise CatalogMappingError(self.label, key, path, obj, exc) from exc

    def external_id(self, obj: models.Model) -> str:
        raw = self._read(obj, "external_id", self.mapping.get("external_id", "pk"))
        return f"{self.mapping.get('prefix', '')}{raw}"

    def many_to_many_links(self) -> list[ManyToManyLink]:
        """The many-to-many relations the mapping's paths start with, one per relation."""
        model = self.model
        names = {path.split(".", 1)[0] for _key, path in mapping_paths(self.mapping)}
        links = [_many_to_many_link(model, name) for name in sorted(names)]
        return list({link.through: link for link in links if link is not None}.values())

    def item_fields(self, obj: models.Model) -> dict[str, Any]:
        """The Item field values for ``obj`` (without the link to the host object).

        Raises:
            CatalogMappingError: a mapped path cannot be read from ``obj``.
        """
        mapping = self.mapping
        read = self._read
        title_value = read(obj, "title", mapping["title"]) if "title" in mapping else str(obj)
        texts = _flatten([read(obj, "text", p) for p in _as_paths(mapping.get("text"))])
        categories = _flatten(
            [read(obj, "categories", p) for p in _as_paths(mapping.get("categories"))]
        )
        attributes = {
            name: _jsonable(read(obj, "attributes", path))
            for name, path in attribute_paths(mapping.get("attributes")).items()
        }
        available = (
            read(obj, "available", mapping["available"]) if "available" in mapping else True
        )
        title = "" if title_value is None else str(title_value)
        return {
            "title": title[:500],
            "text": "\n".join(texts) if texts else title,
            "categories": list(dict.fromkeys(categories)),
            "attributes": attributes,
            "available": bool(available),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        # JSON has no NaN or infinity (PostgreSQL's jsonb rejects them): store null
        number = float(value)
        return number if math.isfinite(number) else None
    if value is None or isinstance(value, bool | int | str):
        return value
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
