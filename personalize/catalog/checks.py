"""System checks for ``PERSONALIZE["CATALOG"]`` (registered in ``personalize.checks``).

personalize.E003
    ``CATALOG`` is not a dict, or names a model that does not exist.
personalize.E004
    A mapping is not a dict, has an unknown key, a value that is not a path (or
    a list of paths where one is allowed; ``attributes`` may also be a dict of
    name -> path), or a path that cannot be followed:
    every step is checked, through foreign keys, one-to-one, many-to-many and
    reverse relations, so ``category.name`` on a plain text ``category`` field
    is reported here instead of failing every save of the model.
personalize.W001
    Several catalog models use bare primary keys as external ids, which can collide.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error, Warning
from django.db import models

from personalize.catalog.adapter import MAPPING_KEYS, fields_by_name
from personalize.conf import personalize_settings

#: Keys that hold one path; the others take a path or a list of paths.
SINGLE_PATH_KEYS = ("external_id", "title", "available")
LIST_PATH_KEYS = ("text", "categories", "attributes")

#: The Python type of a plain field's value, by ``Field.get_internal_type()``:
#: a path may go on into that value's attributes (``created.year``). Types not
#: listed (JSON, files, custom fields) are not followed: anything may come back.
VALUE_TYPES: dict[str, type] = {
    **dict.fromkeys(
        ("CharField", "TextField", "SlugField", "EmailField", "URLField", "FilePathField",
         "GenericIPAddressField", "IPAddressField"), str),
    **dict.fromkeys(
        ("IntegerField", "BigIntegerField", "SmallIntegerField", "PositiveIntegerField",
         "PositiveBigIntegerField", "PositiveSmallIntegerField", "AutoField", "BigAutoField",
         "SmallAutoField"), int),
    "FloatField": float,
    "DecimalField": decimal.Decimal,
    "BooleanField": bool,
    "DateField": datetime.date,
    "DateTimeField": datetime.datetime,
    "TimeField": datetime.time,
    "DurationField": datetime.timedelta,
    "UUIDField": uuid.UUID,
}


def catalog_checks() -> list[CheckMessage]:
    """All catalog configuration errors and warnings."""
    catalog = personalize_settings.CATALOG
    if not isinstance(catalog, dict):
        return [Error("PERSONALIZE['CATALOG'] must be a dict of model label -> field mapping.",
                      hint='For example {"shop.Product": {"title": "name"}}.',
                      id="personalize.E003")]
    errors: list[CheckMessage] = []
    unprefixed = []
    for label, mapping in catalog.items():
        obj = f"PERSONALIZE['CATALOG'][{label!r}]"
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            errors.append(Error(
                f"Catalog model {label!r} does not exist.",
                hint="Use 'app_label.ModelName' of an installed app's model.",
                obj=obj, id="personalize.E003",
            ))
            continue
        mapping = mapping or {}
        if not isinstance(mapping, dict):
            errors.append(Error(
                f"The catalog mapping of {label} is {mapping!r}, not a dict.",
                hint='Map Item fields to paths, e.g. {"title": "name", "categories": '
                     '"category.name"}.',
                obj=obj, id="personalize.E004",
            ))
            continue
        for key in sorted(set(mapping) - MAPPING_KEYS):
            errors.append(Error(
                f"Unknown catalog mapping key {key!r} for {label}.",
                hint=f"Valid keys: {', '.join(sorted(MAPPING_KEYS))}.",
                obj=obj, id="personalize.E004",
            ))
        errors.extend(_mapping_path_errors(model, label, mapping, obj))
        if "external_id" not in mapping and "prefix" not in mapping:
            unprefixed.append(label)
    if len(unprefixed) > 1:
        errors.append(Warning(
            f"Catalog models {', '.join(unprefixed)} all use their primary key as external id; "
            "ids from different models can collide.",
            hint="Give each a 'prefix' (e.g. 'product:') or an 'external_id' path.",
            obj="PERSONALIZE['CATALOG']", id="personalize.W001",
        ))
    return errors


def _mapping_path_errors(model: type[models.Model], label: str, mapping: dict[str, Any],
                         obj: str) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if "prefix" in mapping and not isinstance(mapping["prefix"], str):
        errors.append(_value_error(label, "prefix", mapping["prefix"], "a string", obj))
    for key in (*SINGLE_PATH_KEYS, *LIST_PATH_KEYS):
        if key not in mapping:
            continue
        spec = mapping[key]
        if key == "attributes" and isinstance(spec, dict):
            bad = [name for name, path in spec.items()
                   if not (isinstance(name, str) and name and isinstance(path, str) and path)]
            if bad:
                errors.append(Error(
                    f"Catalog mapping 'attributes' of {label} maps {bad[0]!r} to "
                    f"{spec[bad[0]]!r}.",
                    hint="Map each attribute name to a dotted path, e.g. "
                         "{'price': 'price', 'image': 'image.url'}.",
                    obj=obj, id="personalize.E004",
                ))
                continue
            spec = list(spec.values())
        if isinstance(spec, str):
            paths = [spec]
        elif key in LIST_PATH_KEYS and isinstance(spec, list | tuple) and all(
            isinstance(path, str) for path in spec
        ):
            paths = list(spec)
        else:
            expected = "a path" if key in SINGLE_PATH_KEYS else "a path or a list of paths"
            errors.append(_value_error(label, key, spec, expected, obj))
            continue
        for path in paths:
            problem = path_problem(model, path)
            if problem is not None:
                message, hint = problem
                errors.append(Error(f"{message} (catalog mapping {key!r}: {path!r}).",
                                    hint=hint, obj=obj, id="personalize.E004"))
    return errors


def _value_error(label: str, key: str, value: Any, expected: str, obj: str) -> Error:
    return Error(
        f"The catalog mapping {key!r} of {label} is {value!r}, not {expected}.",
        hint="A path is a dotted string of field, relation, property or method names, "
             "e.g. 'category.name'.",
        obj=obj, id="personalize.E004",
    )


def path_problem(model: type[models.Model], path: str) -> tuple[str, str] | None:
    """Why ``path`` cannot be followed from ``model`` (message, hint), or ``None``.

    Fields and relations are followed step by step: a foreign key, one-to-one,
    many-to-many or reverse relation leads to its model (a to-many relation
    gives one value per related object), a plain field to the type of its value.
    A property or method ends the check: what it returns is known only at run time.
    """
    parts = path.split(".")
    if not all(parts):
        return (f"{path!r} is not a dotted path", "Write names separated by single dots.")
    current: type[models.Model] = model
    for index, part in enumerate(parts):
        label = current._meta.label
        field = fields_by_name(current).get(part)
        if field is None:
            if hasattr(current, part):
                return None  # a property, method or other attribute of the model
            return (f"{label} has no field or attribute {part!r}",
                    f"Name a field, relation, property or method of {label}.")
        related = field.related_model if field.is_relation else None
        if isinstance(related, type) and issubclass(related, models.Model):
            current = related
            continue
        rest = parts[index + 1:]
        if field.is_relation or not rest:
            return None  # the end of the path, or a generic relation: anything may come back
        value_type = VALUE_TYPES.get(field.get_internal_type())
        if value_type is None or hasattr(value_type, rest[0]):
            # what the value's own attribute or method gives is not known here
            return None
        return (
            f"{label}.{part} is a {type(field).__name__}, not a relation, and its "
            f"{value_type.__name__} values have no attribute {rest[0]!r}",
            f"Map {'.'.join(parts[: index + 1])!r} itself, or make {part!r} a ForeignKey "
            f"or ManyToManyField to a model that has {rest[0]!r}.",
        )
    return None
