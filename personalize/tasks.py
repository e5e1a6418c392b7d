"""Celery discovers the app's tasks here (``app.autodiscover_tasks()``).

Each verb keeps its tasks in its own package; this module only imports them.
"""

from personalize.catalog.tasks import *  # noqa: F403
from personalize.consent.tasks import *  # noqa: F403
from personalize.outcomes.tasks import *  # noqa: F403
from personalize.serving.tasks import *  # noqa: F403
from personalize.training.tasks import *  # noqa: F403
