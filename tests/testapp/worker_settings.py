"""Settings of the Celery worker that tests/training/test_worker.py starts.

The test settings, plus the fake strategies and a private queue; the test
process applies :data:`WORKER_PERSONALIZE` to itself so both sides agree.
"""

import os

from tests.testapp.settings import *  # noqa: F403
from tests.testapp.settings import PERSONALIZE

WORKER_PERSONALIZE = {
    "STRATEGIES": {
        "cooc": "tests.training.fakes.CoCount",
        "factors": "tests.training.fakes.TinyFactors",
    },
    "LOAD_ENTRY_POINTS": False,
    "DEFAULT_STRATEGY": "cooc",
    "FALLBACK_STRATEGY": "cooc",
    "RETRAIN_AFTER_EVENTS": 10,
    "ACTIVE_MODEL_CHECK_INTERVAL": 0,
    # a killed worker's training lock expires quickly (it is renewed every 2/3 s meanwhile)
    "TRAINING_LOCK_TTL": 2,
}

PERSONALIZE = {**PERSONALIZE, **WORKER_PERSONALIZE}
# Artifacts must be shared between the worker and the test process: files, not memory.
STORAGES = {
    **STORAGES,  # noqa: F405
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": os.environ.get("PERSONALIZE_TEST_MEDIA_ROOT", "/tmp/personalize-test-media")},
    },
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("PERSONALIZE_TEST_QUEUE", "celery")
