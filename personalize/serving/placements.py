"""Placements as the pipeline reads them: looked up by name, kept per process.

A placement row is read once per process and kept until the serving
generation moves (editing a placement bumps it, see
:mod:`personalize.serving.cache`), so the hot path does not query it. A name
with no row serves with the defaults (``DEFAULT_STRATEGY``, ``DEFAULT_LIMIT``,
``CACHE_TTL``, default filters) and logs a warning once per process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext

from personalize.conf import personalize_settings
from personalize.models import Placement
from personalize.serving.catalog import ANY, STALE
from personalize.serving.filters import FilterConfig, FilterError, parse_filters

logger = logging.getLogger(__name__)

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
_configs: dict[str, tuple[PlacementConfig, Any]] = {}
_warned: set[str] = set()


def load_placement(name: str) -> PlacementConfig:
    """Read a placement from the database (defaults and a one-time warning if missing)."""
    row = Placement.objects.filter(name=name).first()
    if row is None:
        if name not in _warned:
            _warned.add(name)
            logger.warning(
                "Unknown placement %r: serving it with the default settings. "
                "Create it in the admin to configure it.", name,
            )
        return default_config(name)
    return config_from_row(row)


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
        return held[0]
    config = load_placement(name)
    with _lock:
        _configs[name] = (config, STALE if generation is ANY else generation)
    return config


def clear() -> None:
    """Forget every loaded placement and warning (tests use it)."""
    with _lock:
        _configs.clear()
        _warned.clear()
