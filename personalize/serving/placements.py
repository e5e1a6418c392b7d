"""Placements as the pipeline reads them: looked up by name, kept per process.

A placement row is read once per process and kept until the serving
generation moves (editing a placement bumps it, see
:mod:`personalize.serving.cache`), so the hot path does not query it. At most
:data:`MAX_HELD` placements are kept, the least recently used dropped first.

Where a placement comes from:

* a **template tag** naming a placement that has no row creates it with the
  default settings on that first render (:func:`ensure_placement`), so it
  appears in the admin ready to configure;
* the **REST API** serves only placements that exist
  (:func:`placement_exists`; an unknown name is a 404 naming the known ones,
  :func:`known_placements`), so a caller cannot make the site keep, log or
  cache anything for names of its choosing;
* :func:`~personalize.serving.service.recommend` called with a name that has
  no row serves it with the defaults (``DEFAULT_STRATEGY``, ``DEFAULT_LIMIT``,
  ``CACHE_TTL``, default filters) and logs a warning once per process.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import DatabaseError
from django.utils.translation import gettext

from personalize.conf import personalize_settings
from personalize.models import Placement
from personalize.serving.catalog import ANY, STALE
from personalize.serving.filters import FilterConfig, FilterError, parse_filters

logger = logging.getLogger(__name__)

#: Placements kept per process (least recently used dropped first).
MAX_HELD = 1024
#: Known placement names an unknown-placement message lists at most.
MAX_NAMED = 20
#: ``Placement.name`` and ``Placement.limit`` as the model validates them.
NAME_MAX_LENGTH = 64
LIMIT_CEILING = 100


@dataclass(frozen=True)
class PlacementConfig:
    """Everything the pipeline needs to know about one placement.

    Attributes:
        name: the placement name.
        heading: the block heading.
        strategy: the strategy name (``DEFAULT_STRATEGY`` when the row leaves it empty).
        fallback: the fallback strategy name (``FALLBACK_STRATEGY`` when empty).
        limit: how many items the block shows by default.
        filters: the parsed business filters.
        diversity: the MMR lambda in [0, 1].
        cache_ttl: seconds a computed block is cached.
        enabled: a disabled placement shows nothing.
        configured: ``False`` when no row exists and defaults are used.
    """

    name: str
    heading: str
    strategy: str
    fallback: str
    limit: int
    filters: FilterConfig
    diversity: float
    cache_ttl: int
    enabled: bool = True
    configured: bool = True


def default_config(name: str) -> PlacementConfig:
    """The configuration used for a placement name without a row."""
    s = personalize_settings
    return PlacementConfig(
        name=name,
        heading=gettext(s.DEFAULT_HEADING),
        strategy=s.DEFAULT_STRATEGY,
        fallback=s.FALLBACK_STRATEGY,
        limit=int(s.DEFAULT_LIMIT),
        filters=FilterConfig(),
        diversity=0.0,
        cache_ttl=int(s.CACHE_TTL),
        enabled=True,
        configured=False,
    )


def config_from_row(row: Any) -> PlacementConfig:
    """The configuration of a :class:`~personalize.models.Placement` row.

    Invalid ``filters`` JSON (possible only by editing the row outside the
    admin) is logged and replaced by the defaults rather than breaking pages.
    """
    s = personalize_settings
    try:
        filters = parse_filters(row.filters)
    except FilterError as exc:
        logger.error("Placement %r has invalid filters (%s); using the defaults", row.name, exc)
        filters = FilterConfig()
    return PlacementConfig(
        name=row.name,
        heading=row.heading or gettext(s.DEFAULT_HEADING),
        strategy=row.strategy or s.DEFAULT_STRATEGY,
        fallback=row.fallback or s.FALLBACK_STRATEGY,
        limit=int(row.limit),
        filters=filters,
        diversity=float(row.diversity),
        cache_ttl=int(row.cache_ttl),
        enabled=bool(row.enabled),
        configured=True,
    )


_lock = threading.Lock()
_configs: OrderedDict[str, tuple[PlacementConfig, Any]] = OrderedDict()
_warned: set[str] = set()


def load_placement(name: str) -> PlacementConfig:
    """Read a placement from the database (defaults and a one-time warning if missing)."""
    row = Placement.objects.filter(name=name).first()
    if row is None:
        with _lock:
            first = name not in _warned
            if first:
                if len(_warned) >= MAX_HELD:
                    _warned.clear()  # bounded: a name may be warned about again, nothing worse
                _warned.add(name)
        if first:
            logger.warning(
                "Unknown placement %r: serving it with the default settings. "
                "Create it in the admin to configure it.", name,
            )
        return default_config(name)
    return config_from_row(row)


def _remember(name: str, config: PlacementConfig, generation: Any) -> None:
    with _lock:
        _configs[name] = (config, generation)
        _configs.move_to_end(name)
        while len(_configs) > MAX_HELD:
            _configs.popitem(last=False)


def get_placement(name: str, generation: Any = ANY) -> PlacementConfig:
    """The configuration of placement ``name``, from this process's memory when current.

    Args:
        name: the placement name.
        generation: the serving generation just read from the cache; the
            placement is re-read when it was loaded under another one. The
            default accepts whatever is loaded.
    """
    held = _configs.get(name)
    if held is not None and (generation is ANY or held[1] == generation):
        with suppress(KeyError):  # dropped by another thread meanwhile
            _configs.move_to_end(name)
        return held[0]
    config = load_placement(name)
    _remember(name, config, STALE if generation is ANY else generation)
    return config


def placement_exists(name: str) -> bool:
    """Whether placement ``name`` has a row; remembers nothing about a name that has none.

    A placement this process holds costs no query; any other name costs one
    indexed lookup.
    """
    held = _configs.get(name)
    if held is not None and held[0].configured:
        return True
    return Placement.objects.filter(name=name).exists()


def known_placements() -> list[str]:
    """The names of every placement row, sorted."""
    return list(Placement.objects.order_by("name").values_list("name", flat=True))


def unknown_placement_message(name: str) -> str:
    """What an API answers for a placement without a row: the name and the known ones."""
    known = known_placements()
    if not known:
        listed = "none yet (a template tag creates one on first render; or add one in the admin)"
    else:
        listed = ", ".join(known[:MAX_NAMED])
        if len(known) > MAX_NAMED:
            listed += f" and {len(known) - MAX_NAMED} more"
    return f"Unknown placement {name!r}; known placements: {listed}."


def ensure_placement(name: str) -> None:
    """Create placement ``name`` with the default settings unless it exists (template tags).

    The row takes ``DEFAULT_LIMIT`` and ``CACHE_TTL`` and leaves heading,
    strategy and fallback empty, which means ``DEFAULT_HEADING``,
    ``DEFAULT_STRATEGY`` and ``FALLBACK_STRATEGY`` until staff set them. Never
    raises: a name that is not a slug, or a database that refuses the write,
    is logged and the block served with the defaults.
    """
    held = _configs.get(name)
    if held is not None and held[0].configured:
        return
    try:
        validate_slug(name)
        if len(name) > NAME_MAX_LENGTH:
            raise ValidationError("too long")
    except ValidationError:
        logger.warning("Placement name %r is not a slug of at most 64 characters; it is served "
                       "with the default settings and not created", name)
        return
    s = personalize_settings
    try:
        _, created = Placement.objects.get_or_create(name=name, defaults={
            "heading": "", "limit": min(int(s.DEFAULT_LIMIT), LIMIT_CEILING),
            "cache_ttl": int(s.CACHE_TTL),
        })
    except DatabaseError:
        logger.warning("Cannot create placement %r; serving it with the default settings",
                       name, exc_info=True)
        return
    if created:
        logger.info("Created placement %r with the default settings", name)
    with _lock:
        _configs.pop(name, None)  # a default config held for it is out of date
        _warned.discard(name)


def clear() -> None:
    """Forget every loaded placement and warning (tests use it)."""
    with _lock:
        _configs.clear()
        _warned.clear()
