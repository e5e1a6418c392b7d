"""What an experiment variant changes in its placement's configuration.

* ``strategy``: the variant's strategy instead of the placement's.
* ``config``: any of ``strategy``, ``fallback``, ``diversity``, ``limit`` and
  ``filters`` (the placement's ``filters`` JSON, whole) instead of the placement's.
* ``popular``: the popularity baseline: ``POPULARITY_STRATEGY``, or
  ``FALLBACK_STRATEGY`` when that names no configured strategy.
* ``holdout``: no recommendations (serving shows an empty block, see
  :mod:`personalize.serving.service`).

A variant's overrides are validated once per variant object (each load of the
experiment) and kept; an invalid configuration, which only an edit outside the
admin can store, is logged and the placement's own values are served.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from functools import lru_cache
from typing import Any

from django.core.signals import setting_changed

from personalize.conf import personalize_settings
from personalize.experiments.assignment import CONFIG_KEYS, VariantConfig
from personalize.models import Variant
from personalize.serving.filters import FilterError, parse_filters
from personalize.serving.placements import LIMIT_CEILING, PlacementConfig
from personalize.strategies.registry import StrategyConfigError, configured_strategy_specs

logger = logging.getLogger(__name__)

#: Strategy names as a placement stores them (``Placement.strategy``).
STRATEGY_MAX_LENGTH = 64


class VariantConfigError(ValueError):
    """A variant's ``config`` JSON is invalid; ``key`` names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _strategy_name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > STRATEGY_MAX_LENGTH:
        raise VariantConfigError(key, f"must be a strategy name of 1 to {STRATEGY_MAX_LENGTH} "
                                      "characters")
    return value


def parse_variant_config(raw: Any) -> dict[str, Any]:
    """Validate the ``config`` JSON of a variant of kind ``config``.

    Args:
        raw: the stored value (a dict; ``None`` or ``{}``: no change).

    Returns:
        The :class:`~personalize.serving.placements.PlacementConfig` fields it
        overrides (``filters`` parsed).

    Raises:
        VariantConfigError: naming the first invalid key.
    """
    if raw in (None, ""):
        return {}
    if not isinstance(raw, dict):
        raise VariantConfigError("config", "must be a JSON object")
    unknown = sorted(set(raw) - CONFIG_KEYS)
    if unknown:
        raise VariantConfigError(
            unknown[0], f"unknown key; a variant may set {', '.join(sorted(CONFIG_KEYS))}")
    overrides: dict[str, Any] = {}
    for key in ("strategy", "fallback"):
        if key in raw:
            overrides[key] = _strategy_name(key, raw[key])
    if "limit" in raw:
        limit = raw["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIMIT_CEILING:
            raise VariantConfigError("limit", f"must be a whole number from 1 to {LIMIT_CEILING}")
        overrides["limit"] = limit
    if "diversity" in raw:
        diversity = raw["diversity"]
        if (isinstance(diversity, bool) or not isinstance(diversity, int | float)
                or not math.isfinite(diversity) or not 0.0 <= diversity <= 1.0):
            raise VariantConfigError("diversity", "must be a number from 0 to 1")
        overrides["diversity"] = float(diversity)
    if "filters" in raw:
        try:
            overrides["filters"] = parse_filters(raw["filters"])
        except FilterError as exc:
            raise VariantConfigError(f"filters.{exc.key}", exc.message) from exc
    return overrides


def popular_strategy() -> str:
    """The popularity baseline: ``POPULARITY_STRATEGY``, else ``FALLBACK_STRATEGY``.

    ``FALLBACK_STRATEGY`` serves when ``POPULARITY_STRATEGY`` is empty or names
    no configured strategy.
    """
    s = personalize_settings
    name = s.POPULARITY_STRATEGY
    try:
        configured = name in configured_strategy_specs() if name else False
    except StrategyConfigError:  # personalize.E002 reports it
        configured = False
    return str(name) if configured else str(s.FALLBACK_STRATEGY)


@lru_cache(maxsize=512)
def _overrides(variant: VariantConfig) -> dict[str, Any]:
    # keyed by the variant object: a reloaded experiment brings new objects
    if variant.kind == Variant.Kind.STRATEGY:
        return {"strategy": variant.strategy} if variant.strategy else {}
    if variant.kind == Variant.Kind.POPULAR:
        return {"strategy": popular_strategy()}
    if variant.kind == Variant.Kind.CONFIG:
        try:
            return parse_variant_config(variant.config)
        except VariantConfigError as exc:
            logger.error("Variant %r has an invalid configuration (%s); serving its "
                         "placement's own", variant.key, exc)
    return {}


def apply_variant(config: PlacementConfig, variant: VariantConfig | None) -> PlacementConfig:
    """The placement's configuration as ``variant`` serves it (unchanged without one)."""
    if variant is None:
        return config
    overrides = _overrides(variant)
    return replace(config, **overrides) if overrides else config


def _clear_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "PERSONALIZE":  # the popularity baseline depends on the settings
        _overrides.cache_clear()


setting_changed.connect(_clear_on_change)
