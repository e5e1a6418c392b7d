"""The Celery beat entries a site needs: training, retrain check, retention, catalog sync, rollups.

Use it where the site configures Celery, either in its Celery module::

    from personalize.training.schedule import beat_schedule
    app.conf.beat_schedule = {**beat_schedule(), **my_own_entries}

or in ``settings.py``, passing the ``PERSONALIZE`` dict (Django settings are
not readable while the settings module itself is being imported)::

    CELERY_BEAT_SCHEDULE = beat_schedule(PERSONALIZE)
"""

from __future__ import annotations

from typing import Any

from personalize.conf import DEFAULTS, personalize_settings

#: When the retention purge runs (after the nightly training's default hour).
RETENTION_SCHEDULE = {"hour": 4, "minute": 30}


def beat_schedule(config: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``CELERY_BEAT_SCHEDULE`` entries for django-personalize.

    Args:
        config: the ``PERSONALIZE`` settings dict; read from Django settings
            when omitted.

    Returns:
        ``personalize-train-all`` at ``TRAINING_SCHEDULE`` (crontab fields),
        ``personalize-retrain-check`` every ``RETRAIN_CHECK_INTERVAL`` seconds
        (left out when ``RETRAIN_AFTER_EVENTS`` is ``None`` or the interval is
        falsy), ``personalize-purge-expired-events`` daily at 04:30,
        ``personalize-sync-catalog`` at ``CATALOG_SYNC_SCHEDULE`` (left out
        when it is ``None`` or ``CATALOG`` is empty), ``personalize-rollup`` at
        ``ROLLUP_SCHEDULE`` (hourly at minute 10; left out when ``None``).
    """
    from celery.schedules import crontab

    if config is None:
        def get(key: str) -> Any:
            return getattr(personalize_settings, key)
    else:
        def get(key: str) -> Any:
            return config.get(key, DEFAULTS[key])

    entries: dict[str, dict[str, Any]] = {
        "personalize-train-all": {
            "task": "personalize.training.tasks.train_all",
            "schedule": crontab(**get("TRAINING_SCHEDULE")),
        },
        "personalize-purge-expired-events": {
            "task": "personalize.consent.tasks.purge_expired_events",
            "schedule": crontab(**RETENTION_SCHEDULE),
        },
    }
    sync_schedule = get("CATALOG_SYNC_SCHEDULE")
    if sync_schedule is not None and get("CATALOG"):
        entries["personalize-sync-catalog"] = {
            "task": "personalize.catalog.tasks.sync_catalog",
            "schedule": crontab(**sync_schedule),
        }
    rollup_schedule = get("ROLLUP_SCHEDULE")
    if rollup_schedule is not None:
        entries["personalize-rollup"] = {
            "task": "personalize.outcomes.tasks.update_rollups",
            "schedule": crontab(**rollup_schedule),
        }
    interval = get("RETRAIN_CHECK_INTERVAL")
    if get("RETRAIN_AFTER_EVENTS") and interval:
        entries["personalize-retrain-check"] = {
            "task": "personalize.training.tasks.check_retrain_thresholds",
            "schedule": float(interval),
        }
    return entries
