"""System checks for training settings (registered in ``personalize.checks``).

personalize.E034
    ``TRAINING_SCHEDULE`` (or ``CATALOG_SYNC_SCHEDULE``, unless ``None``) is not
    a dict of Celery crontab fields, or a field is invalid.
personalize.E035
    ``ACTIVATION_TOLERANCE`` is not a number from 0 to 1.
personalize.E036
    ``HOLDOUT_FRACTION`` is not a number from 0 (no gate) up to, not including, 1.
personalize.E037
    ``ARTIFACT_STORAGE`` is not an alias in ``settings.STORAGES``.
personalize.E038
    A count setting (``RETRAIN_AFTER_EVENTS``, ``HOLDOUT_MAX_SUBJECTS``,
    ``KEEP_ARTIFACTS``, ``TASK_CHUNK_SIZE``) is not a whole number >= 1 (>= 0 for
    ``KEEP_ARTIFACTS``; or ``None`` where allowed).
personalize.E039
    A time setting (``TRAINING_LOCK_TTL``, ``ACTIVE_MODEL_CHECK_INTERVAL``,
    ``RETRAIN_CHECK_INTERVAL``, ``PRECOMPUTE_TTL``, ``EMBED_DEBOUNCE_SECONDS``,
    ``CACHE_RETRY_INTERVAL``) is not a number in its range.
personalize.E020
    A configured strategy declares a largest catalog (``Strategy.max_items``,
    EASE: ``EASE_MAX_ITEMS``) and the catalog has more available items.
personalize.W031
    Celery runs tasks on workers but ``CACHE_ALIAS`` is a per-process cache:
    training locks and the retrain counter are not shared, so trainings of one
    strategy may overlap (web processes still notice a new model: with a
    per-process cache they read the live version from the database).
personalize.W032
    ``HOLDOUT_FRACTION`` is above 0.5: the gated model trains on less than half the data.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.db import DatabaseError

from personalize.conf import personalize_settings
from personalize.models import Item
from personalize.strategies import Strategy

CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
PROCESS_LOCAL_CACHES = ("LocMemCache", "DummyCache")

#: key -> (may be None, smallest allowed)
COUNT_SETTINGS: dict[str, tuple[bool, int]] = {
    "RETRAIN_AFTER_EVENTS": (True, 1),
    "HOLDOUT_MAX_SUBJECTS": (True, 1),
    "KEEP_ARTIFACTS": (True, 0),  # 0: only the live version keeps its file
    "TASK_CHUNK_SIZE": (False, 1),
}
#: key -> (may be None, must be strictly positive)
TIME_SETTINGS: dict[str, tuple[bool, bool]] = {
    "TRAINING_LOCK_TTL": (False, True),
    "ACTIVE_MODEL_CHECK_INTERVAL": (False, False),
    "RETRAIN_CHECK_INTERVAL": (True, True),
    "PRECOMPUTE_TTL": (False, True),
    "EMBED_DEBOUNCE_SECONDS": (False, False),
    "CACHE_RETRY_INTERVAL": (False, False),
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _schedule_errors(schedule: Any, key: str = "TRAINING_SCHEDULE",
                     example: str = '{"hour": 3, "minute": 0}') -> list[CheckMessage]:
    obj = f"PERSONALIZE[{key!r}]"
    hint = (f"Use Celery crontab fields, for example {example} "
            f"(keys: {', '.join(CRONTAB_FIELDS)}).")
    if not isinstance(schedule, dict):
        return [Error(f"{obj} is {schedule!r}, not a dict.",
                      hint=hint, obj=obj, id="personalize.E034")]
    unknown = sorted(set(schedule) - set(CRONTAB_FIELDS))
    if unknown:
        return [Error(f"{obj} has unknown field {unknown[0]!r}.",
                      hint=hint, obj=obj, id="personalize.E034")]
    from celery.schedules import crontab

    try:
        crontab(**schedule)
    except (ValueError, TypeError) as exc:
        return [Error(f"{obj} is not a valid crontab: {exc}",
                      hint=hint, obj=obj, id="personalize.E034")]
    return []


def training_checks() -> list[CheckMessage]:
    """Every training-settings check (see the module docstring)."""
    s = personalize_settings
    errors = _schedule_errors(s.TRAINING_SCHEDULE)
    if s.CATALOG_SYNC_SCHEDULE is not None:  # None: no scheduled catalog sync
        errors += _schedule_errors(s.CATALOG_SYNC_SCHEDULE, "CATALOG_SYNC_SCHEDULE",
                                   '{"hour": 2, "minute": 30}, or None for no sync')
    tolerance = s.ACTIVATION_TOLERANCE
    if not _number(tolerance) or not 0 <= tolerance <= 1:
        errors.append(Error(
            f"PERSONALIZE['ACTIVATION_TOLERANCE'] is {tolerance!r}.",
            hint="Use a number from 0 to 1: how much lower ndcg@10 a new version may score "
                 "than the live one and still go live (0.01 by default).",
            obj="PERSONALIZE['ACTIVATION_TOLERANCE']", id="personalize.E035",
        ))
    fraction = s.HOLDOUT_FRACTION
    if not _number(fraction) or not 0 <= fraction < 1:
        errors.append(Error(
            f"PERSONALIZE['HOLDOUT_FRACTION'] is {fraction!r}.",
            hint="Use a number from 0 (no holdout, no gate) up to but not including 1; "
                 "0.1 holds out the newest tenth of the events.",
            obj="PERSONALIZE['HOLDOUT_FRACTION']", id="personalize.E036",
        ))
    elif fraction > 0.5:
        errors.append(Warning(
            f"PERSONALIZE['HOLDOUT_FRACTION'] is {fraction!r}: the model that goes live is "
            "trained on less than half of the events.",
            hint="Hold out 0.05 to 0.2 of the events.",
            obj="PERSONALIZE['HOLDOUT_FRACTION']", id="personalize.W032",
        ))
    storages = getattr(settings, "STORAGES", {}) or {}
    if s.ARTIFACT_STORAGE not in storages:
        errors.append(Error(
            f"PERSONALIZE['ARTIFACT_STORAGE'] is {s.ARTIFACT_STORAGE!r}, which is not in "
            "settings.STORAGES.",
            hint=f"Use one of: {', '.join(storages) or '(none configured)'}.",
            obj="PERSONALIZE['ARTIFACT_STORAGE']", id="personalize.E037",
        ))
    for key, (nullable, low) in COUNT_SETTINGS.items():
        value = getattr(s, key)
        if value is None and nullable:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            errors.append(Error(
                f"PERSONALIZE[{key!r}] is {value!r}.",
                hint=f"Use a whole number of at least {low}"
                     + (" or None to switch it off." if nullable else "."),
                obj=f"PERSONALIZE[{key!r}]", id="personalize.E038",
            ))
    for key, (nullable, strict) in TIME_SETTINGS.items():
        value = getattr(s, key)
        if value is None and nullable:
            continue
        if not _number(value) or value < 0 or (strict and value == 0):
            bound = "greater than 0" if strict else "0 or more"
            errors.append(Error(
                f"PERSONALIZE[{key!r}] is {value!r}.",
                hint=f"Use a number of seconds {bound}"
                     + (" or None to switch it off." if nullable else "."),
                obj=f"PERSONALIZE[{key!r}]", id="personalize.E039",
            ))
    errors.extend(_shared_cache_warnings())
    return errors


def _shared_cache_warnings() -> list[CheckMessage]:
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return []  # one process does everything: a local cache is shared enough
    alias = personalize_settings.CACHE_ALIAS
    backend = (settings.CACHES.get(alias) or {}).get("BACKEND", "")
    if not backend.endswith(PROCESS_LOCAL_CACHES):
        return []
    return [Warning(
        f"The cache {alias!r} ({backend.rsplit('.', 1)[-1]}) is local to each process, but "
        "Celery runs tasks on workers: training locks and the retrain counter are not shared.",
        hint="Use a shared cache such as django-redis for PERSONALIZE['CACHE_ALIAS']; with "
             "this one, trainings of one strategy may overlap and the retrain threshold is "
             "counted in the database.",
        obj="PERSONALIZE['CACHE_ALIAS']", id="personalize.W031",
    )]


def catalog_size_errors(strategies: dict[str, Strategy]) -> list[CheckMessage]:
    """personalize.E020: strategies whose declared item ceiling the catalog exceeds."""
    ceilings = {}
    for name, strategy in strategies.items():
        ceiling = strategy.max_items()
        # a ceiling that is not a positive integer is the strategy's own check to report
        if isinstance(ceiling, int) and not isinstance(ceiling, bool) and ceiling >= 1:
            ceilings[name] = ceiling
    if not ceilings:
        return []
    try:
        catalog = Item.objects.filter(available=True).count()
    except (DatabaseError, RuntimeError):
        # no table yet (before migrate), or a test runner that forbids queries here
        return []
    return [
        Error(
            f"The catalog has {catalog} available items, more than strategy {name!r} can "
            f"train on ({ceiling}); its training will fail once more of them have interactions.",
            hint="Raise the strategy's item ceiling if the training workers have the memory "
                 "(EASE: PERSONALIZE['EASE_MAX_ITEMS'] or its max_items option; the Surprise "
                 "KNNBaseline and SlopeOne: their max_matrix_rows option), or use "
                 "item_knn for this catalog.",
            obj=f"PERSONALIZE['STRATEGIES'][{name!r}]", id="personalize.E020",
        )
        for name, ceiling in ceilings.items()
        if catalog > ceiling
    ]
