"""Settings for the tracking benchmarks: the test project on PostgreSQL + Redis, with DRF tokens.

``rest_framework.authtoken`` is installed so the ingestion benchmark
authenticates the way a production server-to-server caller does (the default
``SERVER_AUTHENTICATION_CLASSES`` then resolves to ``TokenAuthentication``).
"""

import os

os.environ.setdefault("PERSONALIZE_TEST_SERVICES", "1")
# A Redis database of its own: test runs flush theirs (django-redis clear() is FLUSHDB).
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")

from tests.testapp.settings import *  # noqa: F403
from tests.testapp.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "rest_framework.authtoken"]
ROOT_URLCONF = "tests.tracking.urls"
DEBUG = False
