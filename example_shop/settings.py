"""Settings for the demo shop.

Everything comes from the environment, with defaults that need nothing installed
by hand (see docs/demo.md):

- ``DATABASE_URL``: default a SQLite file under ``var/`` in the repository.
- ``REDIS_URL``: unset -> Django's local-memory cache; set -> django-redis.
- ``CELERY_BROKER_URL``: unset -> Celery runs tasks eagerly, in-process.
- ``PERSONALIZE_DATA_DIR``: the real data sets, default ``../shared/data``.
- ``SECRET_KEY``, ``DEBUG``, ``ALLOWED_HOSTS``: development defaults.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
REPO_DIR = BASE_DIR.parent
VAR_DIR = Path(os.environ.get("EXAMPLE_SHOP_VAR_DIR", REPO_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get(
    "SECRET_KEY", "django-insecure-example-shop-dev-key-change-me-in-production"
)
DEBUG = _env_bool("DEBUG", True)
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
                 if h]
if DEBUG:
    ALLOWED_HOSTS.append("testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "personalize",
    "example_shop.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "personalize.tracking.middleware.VisitorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_shop.urls"
WSGI_APPLICATION = "example_shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # the project's own templates first: they restyle django-personalize's pages
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- database: DATABASE_URL or a SQLite file under var/ ---------------------------

if os.environ.get("DATABASE_URL"):
    try:
        import dj_database_url
    except ImportError as exc:  # a dev dependency: `pip install -e ".[dev]"` brings it
        raise ImproperlyConfigured(
            "DATABASE_URL is set but dj-database-url is not installed."
        ) from exc
    # Kept connections are checked before reuse: after a database restart no request
    # meets a dead one (docs/operations.md).
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60,
                                                  conn_health_checks=True)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "example_shop.sqlite3"),
            "OPTIONS": {
                # Seeding writes while the dev server reads: wait rather than fail.
                "timeout": 30,
                # A transaction that reads and then writes (a batch of tracked events) takes
                # the write lock at BEGIN, so it waits for another writer instead of failing
                # at once with "database is locked" (SQLite does not wait on an upgrade).
                "transaction_mode": "IMMEDIATE",
                # Readers are not blocked by a writer.
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }

# --- cache: REDIS_URL or local memory ---------------------------------------------

if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "KEY_PREFIX": "example-shop",
            # A Redis that hangs costs a request half a second at most, not minutes. The SDK
            # treats a failed cache call as a miss and then leaves the cache alone for
            # PERSONALIZE["CACHE_RETRY_INTERVAL"] seconds; the shop guards its own calls.
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Celery: CELERY_BROKER_URL or eager -------------------------------------------

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("CELERY_BROKER_URL")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TIMEZONE = "UTC"

# --- auth, i18n, static and media --------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "shop:home"
LOGOUT_REDIRECT_URL = "shop:home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"  # trained model artifacts land here (Django default storage)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SPECTACULAR_SETTINGS = {
    "TITLE": "django-personalize demo shop API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "personalize": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}

# --- django-personalize ------------------------------------------------------------

#: The core strategies, then the embeddings plugin's when it is installed, so the
#: demo starts (and its system checks pass) with or without it.
STRATEGIES: dict[str, Any] = {
    "popular": "personalize.strategies.popularity.Popularity",
    "trending": "personalize.strategies.popularity.Trending",
    "item_knn": "personalize.strategies.item_knn.ItemKNN",
    "ease": "personalize.strategies.ease.EASE",
    # Collaborative parts only: a blend fits its parts itself, and embedding the
    # catalog a second time would double the demo's training time.
    "hybrid": (
        "personalize.strategies.hybrid.Blend", {"strategies": {"ease": 0.5, "item_knn": 0.5}}
    ),
}


def _importable(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ImportError:  # a missing parent package
        return False


if _importable("personalize_embeddings.strategy"):
    STRATEGIES["embeddings"] = "personalize_embeddings.strategy.Embeddings"

PERSONALIZE = {
    "DATA_DIR": os.environ.get("PERSONALIZE_DATA_DIR", str(REPO_DIR.parent / "shared" / "data")),
    "CATALOG": {
        "shop.Product": {
            # ASINs as external ids: stable across re-seeding and readable in the API.
            "external_id": "asin",
            "title": "name",
            "text": ["name", "description", "brand"],
            "categories": "category.name",
            "available": "in_stock",
            # shown with every recommendation: {{ rec.attributes.price }}, and in the REST API
            "attributes": {"price": "price", "brand": "brand", "image": "image_url"},
        }
    },
    "STRATEGIES": STRATEGIES,
    # Only what is listed above: the Surprise plugin's rating models would slow
    # `make demo` down and rank an implicit-feedback shop badly.
    "LOAD_ENTRY_POINTS": False,
    "DEFAULT_STRATEGY": "hybrid",
    "CONSENT_MODE": "opt-in",
}
