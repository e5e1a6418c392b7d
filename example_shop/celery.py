"""The demo shop's Celery app.

Configured from Django settings under the ``CELERY_`` namespace. Without
``CELERY_BROKER_URL`` the settings make every task run eagerly, in-process, so
the demo needs no broker; with it, start a worker and beat::

    celery -A example_shop worker -l info
    celery -A example_shop beat -l info
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_shop.settings")

app = Celery("example_shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
