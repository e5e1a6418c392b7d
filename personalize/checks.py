"""Django system checks for every configuration mistake a site can make.

Each id is listed in docs/settings.md with what it means and how to fix it.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from rest_framework.renderers import BaseRenderer

from personalize.catalog.checks import catalog_checks
from personalize.conf import DEFAULTS, REMOVED_SETTINGS, class_list_errors, personalize_settings
from personalize.consent.checks import consent_checks
from personalize.consent.service import REQUIRED_PURPOSES
from personalize.outcomes.checks import outcome_checks
from personalize.serving.checks import experiment_checks, placement_checks, serving_checks
from personalize.strategies.registry import StrategyConfigError, configured_strategy_specs
from personalize.tracking.checks import tracking_checks
from personalize.training.checks import catalog_size_errors, training_checks

CONSENT_MODES = ("opt-in", "opt-out")
REVOKE_ACTIONS = ("erase", "anonymize")


@register(Tags.compatibility)
def check_settings_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E001: PERSONALIZE is not a dict or has unknown keys."""
    raw = getattr(settings, "PERSONALIZE", {})
    if not isinstance(raw, dict):
        return [Error(
            "settings.PERSONALIZE must be a dict.",
            hint="Set PERSONALIZE = {...} with keys from docs/settings.md.",
            id="personalize.E001",
        )]
    return [
        Error(
            f"PERSONALIZE[{key!r}] was removed: {REMOVED_SETTINGS[key]}"
            if key in REMOVED_SETTINGS else
            f"PERSONALIZE[{key!r}] is not a django-personalize setting.",
            hint="Check the spelling against docs/settings.md.",
            obj="settings.PERSONALIZE",
            id="personalize.E001",
        )
        for key in raw
        if key not in DEFAULTS
    ]


def _settings_ok() -> bool:
    try:
        personalize_settings.user_settings  # noqa: B018
    except ImproperlyConfigured:
        return False
    return True


@register(Tags.compatibility)
def check_strategies(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E002 (strategy cannot be loaded) and E006/E007 (default names)."""
    if not _settings_ok():
        return []

    errors: list[CheckMessage] = []
    try:
        specs = configured_strategy_specs()
    except StrategyConfigError as exc:
        return [Error(str(exc), hint=exc.hint, obj="PERSONALIZE['STRATEGIES']",
                      id="personalize.E002")]
    errors.extend(_strategy_option_errors(specs))
    names = set(specs)
    for key, check_id in (("DEFAULT_STRATEGY", "personalize.E006"),
                          ("FALLBACK_STRATEGY", "personalize.E007")):
        value = getattr(personalize_settings, key)
        if value not in names:
            errors.append(Error(
                f"PERSONALIZE[{key!r}] is {value!r}, which is not a configured strategy.",
                hint=f"Use one of: {', '.join(sorted(names)) or '(none configured)'}.",
                obj=f"PERSONALIZE[{key!r}]",
                id=check_id,
            ))
    return errors


def _strategy_option_errors(specs: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    built = {}
    for name, spec in specs.items():
        try:
            strategy = spec.build()
        except (TypeError, ValueError) as exc:
            errors.append(Error(
                f"Strategy {name!r} has invalid options: {exc}",
                hint="Fix the options dict given with the strategy in PERSONALIZE['STRATEGIES'].",
                obj=f"PERSONALIZE['STRATEGIES'][{name!r}]",
                id="personalize.E002",
            ))
            continue
        built[name] = strategy
        errors.extend(strategy.check())
    return errors + catalog_size_errors(built)


@register(Tags.models)
def check_catalog(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E003 (catalog model), E004 (mapping keys and paths), W001 (id collisions)."""
    if not _settings_ok():
        return []
    return catalog_checks()


@register(Tags.caches)
def check_cache_alias(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E005: the cache alias is not in CACHES."""
    if not _settings_ok():
        return []
    alias = personalize_settings.CACHE_ALIAS
    if alias not in settings.CACHES:
        return [Error(
            f"PERSONALIZE['CACHE_ALIAS'] is {alias!r}, which is not in settings.CACHES.",
            hint=f"Use one of: {', '.join(settings.CACHES)}.",
            obj="PERSONALIZE['CACHE_ALIAS']", id="personalize.E005",
        )]
    return []


#: Cache backends talking to Redis, and the ``OPTIONS`` keys of their socket timeouts.
REDIS_TIMEOUT_OPTIONS = {
    "django_redis.cache.RedisCache": ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"),
    "django.core.cache.backends.redis.RedisCache": ("socket_connect_timeout", "socket_timeout"),
}


@register(Tags.caches)
def check_cache_timeouts(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.W005: the cache the SDK uses talks to Redis without socket timeouts."""
    if not _settings_ok():
        return []
    alias = personalize_settings.CACHE_ALIAS
    config: dict[str, Any] = settings.CACHES.get(alias) or {}
    keys = REDIS_TIMEOUT_OPTIONS.get(str(config.get("BACKEND", "")))
    if keys is None:
        return []
    options: dict[str, Any] = config.get("OPTIONS") or {}
    missing = [key for key in keys if options.get(key) is None]
    if not missing:
        return []
    return [Warning(
        f"The cache {alias!r} has no {' or '.join(missing)}: a Redis server that accepts "
        "connections but does not answer makes requests wait for it without a limit.",
        hint=f'Set "OPTIONS": {{"{keys[0]}": 0.5, "{keys[1]}": 0.5}} (seconds) on '
             f"CACHES[{alias!r}]; after a timeout the SDK serves without the cache and leaves "
             "it alone for PERSONALIZE['CACHE_RETRY_INTERVAL'] seconds.",
        obj=f"settings.CACHES[{alias!r}]", id="personalize.W005",
    )]


@register(Tags.compatibility)
def check_events_and_consent(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E008-E011: event weights, consent mode, revoke action, rate limits."""
    if not _settings_ok():
        return []
    s = personalize_settings
    errors: list[CheckMessage] = []
    for name, weight in s.event_weights.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", str(name)):
            errors.append(Error(
                f"Event type {name!r} is not a valid name.",
                hint="Use lower-case letters, digits and underscores, at most 32 characters.",
                obj="PERSONALIZE['EXTRA_EVENT_TYPES']", id="personalize.E008",
            ))
        elif weight is not None and not isinstance(weight, int | float):
            errors.append(Error(
                f"Event type {name!r} has weight {weight!r}; weights are numbers or None.",
                hint="None marks an explicit rating; 0 records without counting as preference.",
                obj="PERSONALIZE['EXTRA_EVENT_TYPES']", id="personalize.E008",
            ))
    if s.CONSENT_MODE not in CONSENT_MODES:
        errors.append(Error(
            f"PERSONALIZE['CONSENT_MODE'] is {s.CONSENT_MODE!r}.",
            hint="Use 'opt-in' (the GDPR default) or 'opt-out'.",
            obj="PERSONALIZE['CONSENT_MODE']", id="personalize.E009",
        ))
    if s.ON_CONSENT_REVOKED not in REVOKE_ACTIONS:
        errors.append(Error(
            f"PERSONALIZE['ON_CONSENT_REVOKED'] is {s.ON_CONSENT_REVOKED!r}.",
            hint="Use 'erase' or 'anonymize'.",
            obj="PERSONALIZE['ON_CONSENT_REVOKED']", id="personalize.E010",
        ))
    for scope, rate in (s.RATE_LIMITS or {}).items():
        if rate is not None and not re.fullmatch(r"\d+/(second|minute|hour|day)", str(rate)):
            errors.append(Error(
                f"PERSONALIZE['RATE_LIMITS'][{scope!r}] is {rate!r}.",
                hint="Use 'N/second', 'N/minute', 'N/hour', 'N/day' or None to disable.",
                obj="PERSONALIZE['RATE_LIMITS']", id="personalize.E011",
            ))
    if s.MAX_BATCH_SIZE < 1 or s.MAX_BATCH_SIZE > 10_000:
        errors.append(Error(
            f"PERSONALIZE['MAX_BATCH_SIZE'] is {s.MAX_BATCH_SIZE!r}.",
            hint="Use a number from 1 to 10000.",
            obj="PERSONALIZE['MAX_BATCH_SIZE']", id="personalize.E012",
        ))
    return errors


@register(Tags.compatibility)
def check_data_dir(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.W002: DATA_DIR is set but is not a directory."""
    if not _settings_ok():
        return []
    from pathlib import Path

    data_dir = personalize_settings.DATA_DIR
    if data_dir and not Path(data_dir).is_dir():
        return [Warning(
            f"PERSONALIZE['DATA_DIR'] is {str(data_dir)!r}, which is not a directory.",
            hint="Point it (or PERSONALIZE_DATA_DIR) at the folder holding the data sets.",
            obj="PERSONALIZE['DATA_DIR']", id="personalize.W002",
        )]
    return []


@register(Tags.compatibility)
def check_tracking(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E030-E033 and W030: tracking settings and the visitor middleware."""
    if not _settings_ok():
        return []

    return tracking_checks()


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@register(Tags.compatibility)
def check_consent_and_retention(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E013-E019, E022: purposes and their texts, policy, signals, cache, retention."""
    if not _settings_ok():
        return []

    s = personalize_settings
    errors: list[CheckMessage] = []
    purposes = s.CONSENT_PURPOSES
    if not isinstance(purposes, list | tuple) or not all(
        isinstance(p, str) and re.fullmatch(r"[a-z][a-z0-9_]{0,31}", p) for p in purposes
    ) or len(set(purposes)) != len(purposes):
        errors.append(Error(
            f"PERSONALIZE['CONSENT_PURPOSES'] is {purposes!r}.",
            hint="Use a list of distinct names of lower-case letters, digits and underscores, "
                 "at most 32 characters each.",
            obj="PERSONALIZE['CONSENT_PURPOSES']", id="personalize.E014",
        ))
    else:
        missing = [p for p in REQUIRED_PURPOSES if p not in purposes]
        if missing:
            errors.append(Error(
                f"PERSONALIZE['CONSENT_PURPOSES'] lacks {', '.join(map(repr, missing))}.",
                hint="Tracking and recommendations ask for 'personalization' and 'analytics'; "
                     "keep both and add your own.",
                obj="PERSONALIZE['CONSENT_PURPOSES']", id="personalize.E013",
            ))
    days = s.RETENTION_DAYS
    if days is not None and not _positive_int(days):
        errors.append(Error(
            f"PERSONALIZE['RETENTION_DAYS'] is {days!r}.",
            hint="Use a whole number of days greater than 0, or None to keep events forever.",
            obj="PERSONALIZE['RETENTION_DAYS']", id="personalize.E015",
        ))
    version = s.CONSENT_POLICY_VERSION
    if not isinstance(version, str) or not version.strip() or len(version) > 32:
        errors.append(Error(
            f"PERSONALIZE['CONSENT_POLICY_VERSION'] is {version!r}.",
            hint="Use a non-empty string of at most 32 characters, e.g. '2024-05'; "
                 "it is stored with every consent record.",
            obj="PERSONALIZE['CONSENT_POLICY_VERSION']", id="personalize.E016",
        ))
    for key in ("HONOR_GPC", "HONOR_DNT", "CONSENT_REASK_ON_POLICY_CHANGE"):
        value = getattr(s, key)
        if not isinstance(value, bool):
            errors.append(Error(
                f"PERSONALIZE[{key!r}] is {value!r}.",
                hint="Use True or False.",
                obj=f"PERSONALIZE[{key!r}]", id="personalize.E017",
            ))
    if not _positive_int(s.CONSENT_CACHE_TTL):
        errors.append(Error(
            f"PERSONALIZE['CONSENT_CACHE_TTL'] is {s.CONSENT_CACHE_TTL!r}.",
            hint="Use a whole number of seconds greater than 0; every consent change "
                 "clears the cached state anyway.",
            obj="PERSONALIZE['CONSENT_CACHE_TTL']", id="personalize.E018",
        ))
    if not _positive_int(s.RETENTION_CHUNK_SIZE):
        errors.append(Error(
            f"PERSONALIZE['RETENTION_CHUNK_SIZE'] is {s.RETENTION_CHUNK_SIZE!r}.",
            hint="Use a whole number of rows greater than 0 (e.g. 5000).",
            obj="PERSONALIZE['RETENTION_CHUNK_SIZE']", id="personalize.E019",
        ))
    errors.extend(consent_checks())
    return errors


@register(Tags.compatibility)
def check_serving(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E040-E043, E049 and W040-W044: serving and exposure settings, cache, ..."""
    if not _settings_ok():
        return []
    return serving_checks()


@register(Tags.database)
def check_placements(app_configs: Any = None, databases: Any = None,
                     **kwargs: Any) -> list[CheckMessage]:
    """personalize.E044-E045: placement rows (only with ``check --database``)."""
    if not databases or not _settings_ok():
        return []
    return placement_checks()


@register(Tags.database)
def check_experiments(app_configs: Any = None, databases: Any = None,
                      **kwargs: Any) -> list[CheckMessage]:
    """personalize.E048: running experiments that cannot run (only with ``check --database``)."""
    if not databases or not _settings_ok():
        return []
    return experiment_checks()


@register(Tags.compatibility)
def check_training(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E034-E039 and W031-W032: training schedule, gate, storage, shared cache."""
    if not _settings_ok():
        return []
    return training_checks()


@register(Tags.compatibility)
def check_api(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E046: ``API_RENDERER_CLASSES`` is not a list of DRF renderer classes."""
    if not _settings_ok():
        return []
    return class_list_errors(
        "API_RENDERER_CLASSES", BaseRenderer, kind="DRF renderer class",
        check_id="personalize.E046", example="['personalize.api.fastjson.FastJSONRenderer']",
    )


@register(Tags.compatibility)
def check_outcomes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """personalize.E034 (ROLLUP_SCHEDULE), E060-E061: attribution windows and the rollup."""
    if not _settings_ok():
        return []
    return outcome_checks()
