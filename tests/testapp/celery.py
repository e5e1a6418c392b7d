"""The test suite's Celery app, configured from Django settings (``CELERY_`` namespace).

Tests run tasks eagerly (``CELERY_TASK_ALWAYS_EAGER``); the real-worker tests
start ``celery -A tests.testapp.celery worker`` against the Redis broker with
``PERSONALIZE_CELERY_EAGER=0`` in its environment.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.testapp.settings")

app = Celery("testapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
