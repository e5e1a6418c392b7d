"""One settings object for the whole app, read from ``settings.PERSONALIZE``.

Modelled on Django REST framework's ``api_settings``: a ``DEFAULTS`` dict holds
every key with its documented default, unknown keys raise an error that names
them, removed keys say what replaces them, and the cached values are dropped on
``setting_changed`` so ``override_settings`` works in tests.

Read settings at call time (``personalize_settings.CACHE_ALIAS``), never in a
class body or at module import: a value bound at import ignores later overrides.

Every key is documented in ``docs/settings.md``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

#: Built-in event types and their implicit-feedback weights. ``None`` marks an
#: explicit signal (a rating) whose ``value`` is used instead of a weight; ``0``
#: means "recorded but not a preference" (impressions, searches).
DEFAULT_EVENT_TYPES: dict[str, float | None] = {
    "impression": 0.0,
    "search": 0.0,
    "view": 1.0,
    "dwell": 1.0,
    "click": 2.0,
    "like": 4.0,
    "add_to_cart": 4.0,
    "purchase": 8.0,
    "rating": None,
    "dislike": -4.0,
}

#: How fast each event type's weight fades in the history serving reads, in
#: hours: an event's weight halves every half-life (docs/serving.md). Browsing
#: fades within a day and a purchase (weight 8) weighs what a view does now
#: after three days, so three views in this session move the block of a
#: shopper with a long purchase history; explicit likes, ratings and dislikes
#: last a month. ``None`` (or a type left out): no decay.
DEFAULT_HISTORY_HALF_LIFE_HOURS: dict[str, float | None] = {
    "view": 12.0,
    "dwell": 12.0,
    "click": 12.0,
    "add_to_cart": 24.0,
    "purchase": 24.0,
    "like": 24.0 * 30,
    "rating": 24.0 * 30,
    "dislike": 24.0 * 30,
}

DEFAULTS: dict[str, Any] = {
    # --- data location (tests, benchmarks and the demo read real data here) ---
    "DATA_DIR": None,
    # --- catalog ---
    "CATALOG": {},
    "CATALOG_SYNC_SCHEDULE": {"hour": 2, "minute": 30},
    # --- events ---
    "EVENT_TYPES": DEFAULT_EVENT_TYPES,
    "EXTRA_EVENT_TYPES": {},
    "RATING_RANGE": (0.5, 5.0),
    "MAX_DWELL_SECONDS": 3600.0,
    "MAX_BATCH_SIZE": 500,
    "MAX_BODY_BYTES": 1_048_576,
    "MAX_CONTEXT_BYTES": 2048,
    "TIMESTAMP_SKEW_SECONDS": 300,
    "CREATE_UNKNOWN_ITEMS": False,
    # matched with the maintained crawler list of crawler-user-agents (BOT_USER_AGENT_LIST):
    # generic self-descriptions, and script clients the list does not name
    "BOT_USER_AGENT_PATTERN": (
        r"(?:bot|crawler|spider|scraper)(?:[/;)+-]|$)|^java(?:-http-client)?/|^ruby|^php/"
        r"|^dart/|^guzzlehttp/|^restsharp/|^faraday |^deno/|^reqwest/|^undici|^postmanruntime/"
        r"|^insomnia/|http-?client|healthcheck|^kube-probe/|^prometheus/|headless|monitor"
        r"|lighthouse"
    ),
    "BOT_USER_AGENT_LIST": True,
    "RATE_LIMITS": {"subject": "600/minute", "ip": "3000/minute"},
    "CLIENT_IP_META_KEY": None,
    "SERVER_AUTHENTICATION_CLASSES": None,
    "RETENTION_DAYS": 730,
    "RETENTION_CHUNK_SIZE": 5000,
    # --- visitors ---
    "VISITOR_COOKIE_NAME": "personalize_vid",
    "VISITOR_COOKIE_AGE": 60 * 60 * 24 * 365,
    "VISITOR_COOKIE_SECURE": False,
    "VISITOR_COOKIE_SAMESITE": "Lax",
    # --- consent ---
    "CONSENT_MODE": "opt-in",
    "CONSENT_PURPOSES": ("personalization", "analytics"),
    "CONSENT_POLICY_VERSION": "1",
    "HONOR_GPC": True,
    "HONOR_DNT": True,
    "ON_CONSENT_REVOKED": "erase",
    "CONSENT_REASK_ON_POLICY_CHANGE": False,
    "CONSENT_CACHE_TTL": 60 * 60 * 24,
    "CONSENT_PURPOSE_TEXTS": {},
    # --- strategies ---
    "STRATEGIES": {
        "popular": "personalize.strategies.popularity.Popularity",
        "trending": "personalize.strategies.popularity.Trending",
        "item_knn": "personalize.strategies.item_knn.ItemKNN",
        "ease": "personalize.strategies.ease.EASE",
        "transitions": "personalize.strategies.transitions.Transitions",
    },
    "LOAD_ENTRY_POINTS": True,
    "DEFAULT_STRATEGY": "item_knn",
    "FALLBACK_STRATEGY": "popular",
    "EASE_MAX_ITEMS": 20_000,
    "TIME_DECAY_HALF_LIFE_DAYS": None,
    "MIN_ITEM_SUPPORT": 1,
    "MIN_SUBJECT_SUPPORT": 1,
    # --- training snapshot (docs/strategies.md) ---
    "RATING_WEIGHT": 1.0,
    "SNAPSHOT_CHUNK_SIZE": 20_000,
    "SNAPSHOT_BOT_FILTER": None,
    "SNAPSHOT_MAX_SUBJECT_EVENTS": None,
    # --- artifacts and training ---
    "ARTIFACT_STORAGE": "default",
    "ARTIFACT_PATH": "personalize/artifacts",
    "TRAINING_SCHEDULE": {"hour": 3, "minute": 0},
    "RETRAIN_AFTER_EVENTS": 10_000,
    "ACTIVATION_TOLERANCE": 0.01,
    "HOLDOUT_FRACTION": 0.1,
    "TRAINING_LOCK_TTL": 60,
    "HOLDOUT_MAX_SUBJECTS": 2000,
    "KEEP_ARTIFACTS": 2,
    "RETRAIN_CHECK_INTERVAL": 300,
    "ACTIVE_MODEL_CHECK_INTERVAL": 1.0,
    "TASK_CHUNK_SIZE": 500,
    "PRECOMPUTE_TTL": 60 * 60 * 24,
    "EMBED_DEBOUNCE_SECONDS": 10,
    # --- serving ---
    "CACHE_ALIAS": "default",
    "CACHE_RETRY_INTERVAL": 5.0,
    "CACHE_TTL": 300,
    "CANDIDATE_OVERSAMPLING": 3,
    "DEFAULT_LIMIT": 8,
    "MAX_LIMIT": 100,
    "DEFAULT_HEADING": "Recommended for You",
    "SIMILAR_STRATEGY": "item_knn",
    "POPULARITY_STRATEGY": "popular",
    "POPULARITY_WINDOW_DAYS": 30,
    "POPULARITY_CACHE_TTL": 600,
    "DIVERSITY_EMBEDDINGS_STRATEGY": "embeddings",
    "SERVING_ITEM_CACHE_SIZE": 20_000,
    "HISTORY_HALF_LIFE_HOURS": DEFAULT_HISTORY_HALF_LIFE_HOURS,
    # --- exposures: blocks rendered, written in the background (docs/serving.md) ---
    "EXPOSURE_LOGGING": True,
    "EXPOSURE_FLUSH_INTERVAL": 2.0,
    "EXPOSURE_BATCH_SIZE": 500,
    "EXPOSURE_BUFFER_SIZE": 10_000,
    # --- REST API ---
    "API_RENDERER_CLASSES": None,
    # --- outcomes: attribution and rollups (docs/outcomes.md) ---
    "ATTRIBUTION_WINDOW_HOURS": 24,
    "VIEW_THROUGH_HOURS": None,
    "ROLLUP_SCHEDULE": {"minute": 10},
}

#: Keys that used to exist, with what replaces them.
REMOVED_SETTINGS: dict[str, str] = {
    "TRAINING_LOCK_TIMEOUT": (
        "a running training now renews its lock; TRAINING_LOCK_TTL (default 60) is how long "
        "the lock outlives a worker that died. See docs/training.md."
    ),
}

#: Keys whose values are dotted import paths. ``STRATEGIES`` is imported by the
#: strategy registry, which names each failing path; the lists of the others
#: are imported here when first read, as DRF's ``api_settings`` does.
IMPORT_STRINGS = ("STRATEGIES", "API_RENDERER_CLASSES")
IMPORTED_LISTS = ("API_RENDERER_CLASSES",)


class PersonalizeSettings:
    """Attribute access to ``settings.PERSONALIZE`` merged over ``DEFAULTS``."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()
        self._user_settings: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._user_settings is None:
            raw = getattr(django_settings, "PERSONALIZE", {}) or {}
            if not isinstance(raw, dict):
                raise ImproperlyConfigured("settings.PERSONALIZE must be a dict.")
            self._check_keys(raw)
            self._user_settings = raw
        return self._user_settings

    def _check_keys(self, raw: dict[str, Any]) -> None:
        for key in raw:
            if key in REMOVED_SETTINGS:
                raise ImproperlyConfigured(
                    f"PERSONALIZE[{key!r}] was removed: {REMOVED_SETTINGS[key]}"
                )
            if key not in self.defaults:
                raise ImproperlyConfigured(
                    f"PERSONALIZE[{key!r}] is not a django-personalize setting. "
                    "See docs/settings.md for the valid keys."
                )

    def __getattr__(self, attr: str) -> Any:
        if attr not in self.defaults:
            raise AttributeError(f"Invalid django-personalize setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if attr in IMPORTED_LISTS and value is not None:
            value = [_import(path, attr) for path in value]
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    @property
    def event_weights(self) -> dict[str, float | None]:
        """All known event types (built-in or site-defined) and their weights."""
        return {**self.EVENT_TYPES, **self.EXTRA_EVENT_TYPES}

    def reload(self) -> None:
        for attr in self._cached:
            delattr(self, attr)
        self._cached.clear()
        self._user_settings = None


def _import(path: Any, setting: str) -> Any:
    """The object at dotted ``path``; an ``ImportError`` that names the setting."""
    if not isinstance(path, str):
        return path
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImportError(f"PERSONALIZE[{setting!r}]: cannot import {path!r} ({exc}).") from exc


personalize_settings = PersonalizeSettings(DEFAULTS)


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "PERSONALIZE":
        personalize_settings.reload()


setting_changed.connect(_reload_on_change)


def class_list_errors(setting: str, base: type, *, kind: str, example: str,
                      check_id: str) -> list[CheckMessage]:
    """System-check errors of a setting holding a list of dotted paths to ``base`` subclasses.

    ``None`` (the default of such settings) is valid.

    Args:
        setting: the ``PERSONALIZE`` key.
        base: the class every entry must subclass.
        kind: what an entry is, for the messages ("server authentication class").
        example: the hint's example value.
        check_id: the check's id.
    """
    value = personalize_settings.user_settings.get(setting)
    if value is None:
        return []
    obj = f"PERSONALIZE[{setting!r}]"
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        return [Error(f"{obj} must be a list of dotted paths, not {value!r}.",
                      hint=f"For example {example}, or None for the default.",
                      obj=obj, id=check_id)]
    errors: list[CheckMessage] = []
    for path in value:
        try:
            cls = import_string(path) if isinstance(path, str) else path
        except ImportError as exc:
            errors.append(Error(f"Cannot import {kind} {path!r}: {exc}.",
                                hint=f"Name a {base.__module__}.{base.__qualname__} subclass "
                                     "by its dotted path, and install what it needs.",
                                obj=obj, id=check_id))
            continue
        if not (isinstance(cls, type) and issubclass(cls, base)):
            errors.append(Error(f"{path!r} is not a {kind}.",
                                hint=f"Subclass {base.__module__}.{base.__qualname__}.",
                                obj=obj, id=check_id))
    return errors
