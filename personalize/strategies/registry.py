"""Find configured strategies: dotted paths in settings, then the entry-point group.

Settings are explicit and ordered (``PERSONALIZE["STRATEGIES"]``, a dict of
name -> ``"path"`` | ``("path", {options})``). Packages may also publish
strategies under the ``personalize.strategies`` entry-point group; two packages
publishing the same name is an error, as is an entry point whose name is
already configured in settings for a different class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from django.utils.module_loading import import_string

from personalize.conf import personalize_settings
from personalize.strategies.base import Strategy

ENTRY_POINT_GROUP = "personalize.strategies"


class StrategyConfigError(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class StrategySpec:
    """A strategy as configured: its name, class and options."""

    name: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> type[Strategy]:
        try:
            cls = import_string(self.path)
        except ImportError as exc:
            raise StrategyConfigError(
                f"Strategy {self.name!r}: cannot import {self.path!r} ({exc}).",
                hint="Check the dotted path, and that the plugin package is installed.",
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise StrategyConfigError(
                f"Strategy {self.name!r}: {self.path!r} is not a Strategy subclass.",
                hint="Point at a class deriving from personalize.strategies.base.Strategy.",
            )
        return cls

    def build(self) -> Strategy:
        return self.cls(**self.options)


def _parse(name: str, value: Any) -> StrategySpec:
    if isinstance(value, str):
        return StrategySpec(name, value)
    if isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[1], dict):
        return StrategySpec(name, str(value[0]), dict(value[1]))
    raise StrategyConfigError(
        f"Strategy {name!r} is configured as {value!r}.",
        hint='Use "dotted.path.Class" or ("dotted.path.Class", {"option": value}).',
    )


def _entry_point_specs() -> dict[str, StrategySpec]:
    specs: dict[str, StrategySpec] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in specs and specs[ep.name].path != ep.value.replace(":", "."):
            raise StrategyConfigError(
                f"Two packages publish a strategy named {ep.name!r}: "
                f"{specs[ep.name].path} and {ep.value}.",
                hint="Uninstall one, or disable LOAD_ENTRY_POINTS and list strategies in settings.",
            )
        specs[ep.name] = StrategySpec(ep.name, ep.value.replace(":", "."))
    return specs


def configured_strategy_specs() -> dict[str, StrategySpec]:
    """Every strategy by name: settings first, in order, then entry points."""
    raw = personalize_settings.STRATEGIES
    if not isinstance(raw, dict):
        raise StrategyConfigError(
            "PERSONALIZE['STRATEGIES'] must be a dict of name -> class path.",
            hint='For example {"popular": "personalize.strategies.popularity.Popularity"}.',
        )
    specs = {name: _parse(name, value) for name, value in raw.items()}
    for spec in specs.values():
        spec.cls  # noqa: B018 - import now so a typo fails here, named
    if personalize_settings.LOAD_ENTRY_POINTS:
        for name, spec in _entry_point_specs().items():
            if name in specs:
                if specs[name].cls is not spec.cls:
                    raise StrategyConfigError(
                        f"Strategy name {name!r} is configured in settings as "
                        f"{specs[name].path} and published by a package as {spec.path}.",
                        hint="Rename the one in PERSONALIZE['STRATEGIES'].",
                    )
                continue
            specs[name] = spec
    return specs


#: Built strategies, keyed by everything that defines them, so a settings
#: change builds a new instance instead of reusing a stale one.
_instances: dict[tuple[str, str, str], Strategy] = {}


def get_strategy(name: str) -> Strategy:
    """The configured strategy instance called ``name``.

    Raises:
        KeyError: no strategy of that name is configured.
    """
    specs = configured_strategy_specs()
    if name not in specs:
        raise KeyError(
            f"No strategy named {name!r}; configured: {', '.join(specs) or '(none)'}"
        )
    spec = specs[name]
    key = (spec.name, spec.path, repr(sorted(spec.options.items())))
    if key not in _instances:
        _instances[key] = spec.build()
    return _instances[key]


def strategy_names() -> list[str]:
    return list(configured_strategy_specs())
