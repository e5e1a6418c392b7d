"""Settings for the test suite.

``PERSONALIZE_TEST_SERVICES=1`` switches the database to the real PostgreSQL
server and the cache to the real Redis server (``DATABASE_URL`` / ``REDIS_URL``
override where they are); otherwise SQLite in memory and the local-memory cache.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
REPO_DIR = BASE_DIR.parent.parent
USE_SERVICES = os.environ.get("PERSONALIZE_TEST_SERVICES") == "1"

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.testapp.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
    "tests.testapp",
    "example_shop.shop",  # the demo shop's models, for tests/example_shop
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "personalize.tracking.middleware.VisitorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

if USE_SERVICES:
    import dj_database_url

    DATABASES = {
        "default": dj_database_url.parse(
            os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
        )
    }
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
            # A worker started by a test shares the test's prefix through the environment.
            "KEY_PREFIX": os.environ.get("PERSONALIZE_TEST_CACHE_PREFIX")
            or f"personalize-tests-{os.getpid()}",
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.InMemoryStorage",
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

CELERY_TASK_ALWAYS_EAGER = os.environ.get("PERSONALIZE_CELERY_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True
# Used only by the real-worker tests (tests/training/test_worker.py) and their worker.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/14")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

PERSONALIZE = {
    "DATA_DIR": os.environ.get("PERSONALIZE_DATA_DIR", str(REPO_DIR.parent / "shared" / "data")),
    # exposures written during the request, in the test's transaction (no writer thread);
    # tests/outcomes/test_buffer.py runs the thread
    "EXPOSURE_FLUSH_INTERVAL": 0,
    "CATALOG": {
        "testapp.Product": {
            "title": "name",
            "text": ["name", "description"],
            "categories": "category.name",
            "available": "in_stock",
            "attributes": ["price"],
        }
    },
}
