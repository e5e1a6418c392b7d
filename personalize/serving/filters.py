"""Business filters: which catalog items a placement may show to whom.

A placement's ``filters`` JSON holds these keys (all optional; see docs/serving.md):

``exclude_event_types`` (list of event types, default ``["purchase"]``)
    Items the subject has an event of these types for are not shown
    ("already bought"). Add ``"view"`` to hide what they saw.
``exclude_window_days`` (number or ``null``, default ``null``)
    Only events this many days old or newer count for ``exclude_event_types``;
    ``null`` means ever.
``available_only`` (bool, default ``true``)
    Only items whose ``available`` flag is set.
``include_categories`` (list of category names, default ``[]``)
    When not empty, only items in at least one of them.
``exclude_categories`` (list of category names, default ``[]``)
    Never items in any of them.
``pinned`` (list of external ids, default ``[]``)
    Shown first, in this order, to everyone (if they pass the other filters).
``blocked`` (list of external ids, default ``[]``)
    Never shown.
``exclude_current_item`` (bool, default ``true``)
    On a product page (``context={"item": ...}``) the product itself is not shown.

Filters are whole-catalog boolean masks over :class:`~personalize.serving.catalog.CatalogIndex`
rows, computed once per block computation, never per item in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from personalize.conf import personalize_settings
from personalize.models import Event
from personalize.serving.catalog import CatalogIndex
from personalize.tracking.history import SubjectEvents


class FilterError(ValueError):
    """A placement's ``filters`` JSON is invalid; ``key`` names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class FilterConfig:
    """A placement's parsed business filters (see the module docstring for each key)."""

    exclude_event_types: tuple[str, ...] = ("purchase",)
    exclude_window_days: float | None = None
    available_only: bool = True
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    pinned: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    exclude_current_item: bool = True


#: Every key a placement's ``filters`` may hold.
FILTER_KEYS = frozenset(FilterConfig.__dataclass_fields__)
_LIST_KEYS = ("exclude_event_types", "include_categories", "exclude_categories", "pinned",
              "blocked")
_BOOL_KEYS = ("available_only", "exclude_current_item")


def parse_filters(raw: Any, *, check_event_types: bool = True) -> FilterConfig:
    """Validate a placement's ``filters`` JSON.

    Args:
        raw: the stored value (a dict; ``None`` or ``{}`` means all defaults).
        check_event_types: reject event types that are not configured.

    Returns:
        The parsed filters.

    Raises:
        FilterError: naming the first invalid key.
    """
    if raw in (None, ""):
        return FilterConfig()
    if not isinstance(raw, dict):
        raise FilterError("filters", "must be a JSON object")
    unknown = sorted(set(raw) - FILTER_KEYS)
    if unknown:
        raise FilterError(
            unknown[0], f"unknown filter key; valid keys: {', '.join(sorted(FILTER_KEYS))}"
        )
    values: dict[str, Any] = {}
    for key in _LIST_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, str) and v for v in value
        ):
            raise FilterError(key, "must be a list of non-empty strings")
        values[key] = tuple(value)
    for key in _BOOL_KEYS:
        if key in raw:
            if not isinstance(raw[key], bool):
                raise FilterError(key, "must be true or false")
            values[key] = raw[key]
    if "exclude_window_days" in raw:
        days = raw["exclude_window_days"]
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int | float) or days <= 0
        ):
            raise FilterError("exclude_window_days", "must be a positive number or null")
        values["exclude_window_days"] = None if days is None else float(days)
    if check_event_types and "exclude_event_types" in values:
        known = personalize_settings.event_weights
        for event_type in values["exclude_event_types"]:
            if event_type not in known:
                raise FilterError(
                    "exclude_event_types",
                    f"{event_type!r} is not a configured event type; "
                    f"known: {', '.join(sorted(known))}",
                )
    return FilterConfig(**values)


def subject_excluded_items(subject_id: int, filters: FilterConfig,
                           events: SubjectEvents | None = None) -> list[int]:
    """Pks of items the subject already has a filtered event for (one query at most).

    Args:
        subject_id: the subject's pk.
        filters: the placement's filters (``exclude_event_types`` and ``exclude_window_days``).
        events: the subject's history just read, if any: when it holds every
            event of the excluded types (and no window applies), the items
            come from it instead of a second query.
    """
    types = filters.exclude_event_types
    if not types:
        return []
    if events is not None and filters.exclude_window_days is None:
        known = events.items_of(types)
        if known is not None:
            return known
    excluded = Event.objects.filter(subject_id=subject_id, item__isnull=False,
                                    event_type__in=types)
    if filters.exclude_window_days is not None:
        excluded = excluded.filter(
            timestamp__gte=timezone.now() - timedelta(days=filters.exclude_window_days))
    return list(excluded.order_by().values_list("item_id", flat=True).distinct())


def allowed_mask(
    index: CatalogIndex,
    filters: FilterConfig,
    *,
    excluded_pks: list[int] | tuple[int, ...] = (),
    current_item: int | None = None,
) -> np.ndarray:
    """Bool mask over ``index`` rows of the items the placement may show.

    Args:
        index: the catalog index.
        filters: the placement's filters.
        excluded_pks: items removed for this subject (already bought, seen, ...).
        current_item: the pk of the item of the page (removed when
            ``exclude_current_item`` is on).
    """
    placement_mask = index.memo.get(("allowed", filters))
    if placement_mask is None:  # the same for every visitor until the catalog changes
        placement_mask = _placement_mask(index, filters)
        index.memo[("allowed", filters)] = placement_mask
    mask = placement_mask.copy()
    removed = list(excluded_pks)
    if current_item is not None and filters.exclude_current_item:
        removed.append(current_item)
    if removed:
        rows, _ = index.positions(removed)
        mask[rows] = False
    return mask


def _placement_mask(index: CatalogIndex, filters: FilterConfig) -> np.ndarray:
    """What the placement's own filters allow: availability, categories, blocked items."""
    mask = index.available.copy() if filters.available_only else np.ones(len(index), dtype=bool)
    if filters.include_categories:
        mask &= index.in_categories(filters.include_categories)
    if filters.exclude_categories:
        mask &= ~index.in_categories(filters.exclude_categories)
    blocked = blocked_pks(index, filters)
    if blocked:
        rows, _ = index.positions(blocked)
        mask[rows] = False
    return mask


def pinned_pks(index: CatalogIndex, filters: FilterConfig) -> list[int]:
    """The pinned items that exist, in their configured order."""
    return [index.external_ids[e] for e in dict.fromkeys(filters.pinned) if e in index.external_ids]


def blocked_pks(index: CatalogIndex, filters: FilterConfig) -> list[int]:
    """The blocked items that exist (handed to strategies as ``exclude``)."""
    return [index.external_ids[e] for e in filters.blocked if e in index.external_ids]
