"""System checks personalize.E034-E039 and W031-W032 (training settings)."""

from __future__ import annotations

import pytest
from django.core.checks import Error, Warning

from personalize.checks import check_training


def _with(settings, **overrides):
    settings.PERSONALIZE = {**settings.PERSONALIZE, **overrides}


def test_default_training_settings_pass():
    assert check_training() == []


def test_e034_schedule_not_a_dict(settings):
    _with(settings, TRAINING_SCHEDULE="0 3 * * *")
    assert check_training() == [Error(
        "PERSONALIZE['TRAINING_SCHEDULE'] is '0 3 * * *', not a dict.",
        hint='Use Celery crontab fields, for example {"hour": 3, "minute": 0} (keys: minute, '
             "hour, day_of_week, day_of_month, month_of_year).",
        obj="PERSONALIZE['TRAINING_SCHEDULE']", id="personalize.E034",
    )]


def test_e034_unknown_field_and_invalid_value(settings):
    _with(settings, TRAINING_SCHEDULE={"hours": 3})
    [error] = check_training()
    assert error.msg == "PERSONALIZE['TRAINING_SCHEDULE'] has unknown field 'hours'."
    _with(settings, TRAINING_SCHEDULE={"hour": 25})
    [error] = check_training()
    assert error.id == "personalize.E034"
    assert error.msg == ("PERSONALIZE['TRAINING_SCHEDULE'] is not a valid crontab: Invalid "
                         "crontab pattern.  Valid range is 0-23. '25' was found.")


def test_e034_catalog_sync_schedule(settings):
    obj = "PERSONALIZE['CATALOG_SYNC_SCHEDULE']"
    _with(settings, CATALOG_SYNC_SCHEDULE="daily")
    assert check_training() == [Error(
        f"{obj} is 'daily', not a dict.",
        hint='Use Celery crontab fields, for example {"hour": 2, "minute": 30}, or None for '
             "no sync (keys: minute, hour, day_of_week, day_of_month, month_of_year).",
        obj=obj, id="personalize.E034",
    )]
    _with(settings, CATALOG_SYNC_SCHEDULE={"minute": 61})
    [error] = check_training()
    assert error.id == "personalize.E034" and error.msg.startswith(f"{obj} is not a valid crontab")
    _with(settings, CATALOG_SYNC_SCHEDULE=None)
    assert check_training() == []


@pytest.mark.parametrize("value", [-0.1, 1.5, "0.01", None])
def test_e035_activation_tolerance(settings, value):
    _with(settings, ACTIVATION_TOLERANCE=value)
    assert check_training() == [Error(
        f"PERSONALIZE['ACTIVATION_TOLERANCE'] is {value!r}.",
        hint="Use a number from 0 to 1: how much lower ndcg@10 a new version may score than "
             "the live one and still go live (0.01 by default).",
        obj="PERSONALIZE['ACTIVATION_TOLERANCE']", id="personalize.E035",
    )]


@pytest.mark.parametrize("value", [1, 1.0, -0.2, "a tenth"])
def test_e036_holdout_fraction(settings, value):
    _with(settings, HOLDOUT_FRACTION=value)
    assert check_training() == [Error(
        f"PERSONALIZE['HOLDOUT_FRACTION'] is {value!r}.",
        hint="Use a number from 0 (no holdout, no gate) up to but not including 1; 0.1 holds "
             "out the newest tenth of the events.",
        obj="PERSONALIZE['HOLDOUT_FRACTION']", id="personalize.E036",
    )]


def test_w032_large_holdout(settings):
    _with(settings, HOLDOUT_FRACTION=0.6)
    assert check_training() == [Warning(
        "PERSONALIZE['HOLDOUT_FRACTION'] is 0.6: the model that goes live is trained on less "
        "than half of the events.",
        hint="Hold out 0.05 to 0.2 of the events.",
        obj="PERSONALIZE['HOLDOUT_FRACTION']", id="personalize.W032",
    )]


def test_e037_artifact_storage_missing(settings):
    _with(settings, ARTIFACT_STORAGE="models")
    assert check_training() == [Error(
        "PERSONALIZE['ARTIFACT_STORAGE'] is 'models', which is not in settings.STORAGES.",
        hint="Use one of: default, staticfiles.",
        obj="PERSONALIZE['ARTIFACT_STORAGE']", id="personalize.E037",
    )]


@pytest.mark.parametrize(("key", "value", "hint"), [
    ("RETRAIN_AFTER_EVENTS", 0, "Use a whole number of at least 1 or None to switch it off."),
    ("HOLDOUT_MAX_SUBJECTS", 10.5, "Use a whole number of at least 1 or None to switch it off."),
    ("KEEP_ARTIFACTS", True, "Use a whole number of at least 0 or None to switch it off."),
    ("KEEP_ARTIFACTS", -1, "Use a whole number of at least 0 or None to switch it off."),
    ("TASK_CHUNK_SIZE", None, "Use a whole number of at least 1."),
])
def test_e038_counts(settings, key, value, hint):
    _with(settings, **{key: value})
    assert check_training() == [Error(f"PERSONALIZE[{key!r}] is {value!r}.", hint=hint,
                                      obj=f"PERSONALIZE[{key!r}]", id="personalize.E038")]


def test_e038_none_switches_counts_off(settings):
    _with(settings, RETRAIN_AFTER_EVENTS=None, HOLDOUT_MAX_SUBJECTS=None, KEEP_ARTIFACTS=None)
    assert check_training() == []


@pytest.mark.parametrize(("key", "value", "hint"), [
    ("TRAINING_LOCK_TTL", 0, "Use a number of seconds greater than 0."),
    ("ACTIVE_MODEL_CHECK_INTERVAL", -1, "Use a number of seconds 0 or more."),
    ("RETRAIN_CHECK_INTERVAL", "5m",
     "Use a number of seconds greater than 0 or None to switch it off."),
    ("PRECOMPUTE_TTL", None, "Use a number of seconds greater than 0."),
    ("EMBED_DEBOUNCE_SECONDS", -5, "Use a number of seconds 0 or more."),
    ("CACHE_RETRY_INTERVAL", "5s", "Use a number of seconds 0 or more."),
])
def test_e039_times(settings, key, value, hint):
    _with(settings, **{key: value})
    assert check_training() == [Error(f"PERSONALIZE[{key!r}] is {value!r}.", hint=hint,
                                      obj=f"PERSONALIZE[{key!r}]", id="personalize.E039")]


def test_w031_process_local_cache_with_real_workers(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert check_training() == [Warning(
        "The cache 'default' (LocMemCache) is local to each process, but Celery runs tasks on "
        "workers: training locks and the retrain counter are not shared.",
        hint="Use a shared cache such as django-redis for PERSONALIZE['CACHE_ALIAS']; with "
             "this one, trainings of one strategy may overlap and the retrain threshold is "
             "counted in the database.",
        obj="PERSONALIZE['CACHE_ALIAS']", id="personalize.W031",
    )]
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/15"}}
    assert check_training() == []
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert check_training() == []
