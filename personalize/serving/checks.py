"""System checks for serving (registered in ``personalize.checks``).

personalize.E040
    ``CANDIDATE_OVERSAMPLING`` is not a whole number >= 1.
personalize.E041
    ``DEFAULT_LIMIT`` or ``MAX_LIMIT`` is not a whole number >= 1, or
    ``DEFAULT_LIMIT`` is above ``MAX_LIMIT``.
personalize.E042
    ``CACHE_TTL``, ``POPULARITY_CACHE_TTL`` or ``SERVING_ITEM_CACHE_SIZE`` is not a
    whole number >= 0.
personalize.E043
    ``POPULARITY_WINDOW_DAYS`` is not a positive number or ``None``.
personalize.E044 (``manage.py check --database default``)
    A placement's ``filters`` JSON is invalid.
personalize.E045 (``manage.py check --database default``)
    A placement names a strategy or fallback that is not configured.
personalize.E048 (``manage.py check --database default``)
    A running experiment cannot be served: no variants, not exactly one
    control, no positive traffic weight, a variant without its strategy, an
    invalid variant configuration, or a strategy that is not configured.
personalize.E049
    ``EXPOSURE_LOGGING`` is not a boolean, ``EXPOSURE_FLUSH_INTERVAL`` not a
    number >= 0, or ``EXPOSURE_BATCH_SIZE`` / ``EXPOSURE_BUFFER_SIZE`` not a
    whole number >= 1 (or the buffer smaller than a batch).
personalize.W040
    ``POPULARITY_STRATEGY`` is not a configured strategy: popular items are
    counted from the database instead of a trained model.
personalize.W041
    ``SIMILAR_STRATEGY`` is not a configured strategy: similar items fall back
    to popular items of the same category.
personalize.W042
    ``drf_spectacular`` or ``drf_spectacular_sidecar`` is not in ``INSTALLED_APPS``:
    the API docs page (``/docs/``) cannot render or finds no Swagger UI files.
personalize.W043
    The cache alias is a dummy cache: recommendation blocks are never cached.
personalize.W044
    No template engine has the ``request`` context processor: template tags
    cannot tell who the visitor is and show non-personalized blocks.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.db import DatabaseError, connection

from personalize.conf import personalize_settings
from personalize.experiments.assignment import experiment_problems
from personalize.models import Experiment, Placement, Variant
from personalize.serving.filters import FilterError, parse_filters
from personalize.serving.variants import VariantConfigError, parse_variant_config
from personalize.strategies.registry import StrategyConfigError, configured_strategy_specs

#: The apps the API docs page needs: drf-spectacular's template, the sidecar's Swagger UI.
DOCS_APPS = ("drf_spectacular", "drf_spectacular_sidecar")
REQUEST_PROCESSOR = "django.template.context_processors.request"


def _whole(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _configured_names() -> set[str] | None:
    try:
        return set(configured_strategy_specs())
    except StrategyConfigError:  # personalize.E002 reports it
        return None


def serving_checks() -> list[CheckMessage]:
    """Checks of the serving settings."""
    s = personalize_settings
    errors: list[CheckMessage] = []
    if not _whole(s.CANDIDATE_OVERSAMPLING, 1):
        errors.append(Error(
            f"PERSONALIZE['CANDIDATE_OVERSAMPLING'] is {s.CANDIDATE_OVERSAMPLING!r}.",
            hint="Use a whole number >= 1 (3 asks strategies for three times the block size).",
            obj="PERSONALIZE['CANDIDATE_OVERSAMPLING']", id="personalize.E040",
        ))
    limits_ok = True
    for key in ("DEFAULT_LIMIT", "MAX_LIMIT"):
        value = getattr(s, key)
        if not _whole(value, 1):
            limits_ok = False
            errors.append(Error(
                f"PERSONALIZE[{key!r}] is {value!r}.",
                hint="Use a whole number of items >= 1.",
                obj=f"PERSONALIZE[{key!r}]", id="personalize.E041",
            ))
    if limits_ok and s.DEFAULT_LIMIT > s.MAX_LIMIT:
        errors.append(Error(
            f"PERSONALIZE['DEFAULT_LIMIT'] ({s.DEFAULT_LIMIT}) is above "
            f"PERSONALIZE['MAX_LIMIT'] ({s.MAX_LIMIT}).",
            hint="Raise MAX_LIMIT or lower DEFAULT_LIMIT.",
            obj="PERSONALIZE['DEFAULT_LIMIT']", id="personalize.E041",
        ))
    for key in ("CACHE_TTL", "POPULARITY_CACHE_TTL", "SERVING_ITEM_CACHE_SIZE"):
        value = getattr(s, key)
        if not _whole(value, 0):
            errors.append(Error(
                f"PERSONALIZE[{key!r}] is {value!r}.",
                hint="Use a whole number >= 0 (0 disables that cache).",
                obj=f"PERSONALIZE[{key!r}]", id="personalize.E042",
            ))
    days = s.POPULARITY_WINDOW_DAYS
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int | float) or days <= 0
    ):
        errors.append(Error(
            f"PERSONALIZE['POPULARITY_WINDOW_DAYS'] is {days!r}.",
            hint="Use a positive number of days, or None to count every event.",
            obj="PERSONALIZE['POPULARITY_WINDOW_DAYS']", id="personalize.E043",
        ))
    names = _configured_names()
    if names is not None:
        if s.POPULARITY_STRATEGY and s.POPULARITY_STRATEGY not in names:
            errors.append(Warning(
                f"PERSONALIZE['POPULARITY_STRATEGY'] is {s.POPULARITY_STRATEGY!r}, which is not "
                "a configured strategy.",
                hint="Popular items are counted from the database instead. Configure the "
                     "strategy or set POPULARITY_STRATEGY to one of: "
                     f"{', '.join(sorted(names))}.",
                obj="PERSONALIZE['POPULARITY_STRATEGY']", id="personalize.W040",
            ))
        if s.SIMILAR_STRATEGY and s.SIMILAR_STRATEGY not in names:
            errors.append(Warning(
                f"PERSONALIZE['SIMILAR_STRATEGY'] is {s.SIMILAR_STRATEGY!r}, which is not a "
                "configured strategy.",
                hint="Similar items fall back to popular items of the same category. Use one "
                     f"of: {', '.join(sorted(names))}.",
                obj="PERSONALIZE['SIMILAR_STRATEGY']", id="personalize.W041",
            ))
    errors.extend(_exposure_checks())
    errors.extend(_environment_checks())
    return errors


def _exposure_checks() -> list[CheckMessage]:
    s = personalize_settings
    errors: list[CheckMessage] = []

    def error(key: str, hint: str) -> None:
        errors.append(Error(f"PERSONALIZE[{key!r}] is {getattr(s, key)!r}.", hint=hint,
                            obj=f"PERSONALIZE[{key!r}]", id="personalize.E049"))

    if not isinstance(s.EXPOSURE_LOGGING, bool):
        error("EXPOSURE_LOGGING", "Use True (log each rendered block) or False.")
    interval = s.EXPOSURE_FLUSH_INTERVAL
    if (isinstance(interval, bool) or not isinstance(interval, int | float)
            or not 0 <= interval < float("inf")):
        error("EXPOSURE_FLUSH_INTERVAL", "Use a number of seconds >= 0 (0 writes each "
                                         "exposure during the request).")
    sizes_ok = True
    for key in ("EXPOSURE_BATCH_SIZE", "EXPOSURE_BUFFER_SIZE"):
        if not _whole(getattr(s, key), 1):
            sizes_ok = False
            error(key, "Use a whole number of exposures >= 1.")
    if sizes_ok and s.EXPOSURE_BUFFER_SIZE < s.EXPOSURE_BATCH_SIZE:
        errors.append(Error(
            f"PERSONALIZE['EXPOSURE_BUFFER_SIZE'] ({s.EXPOSURE_BUFFER_SIZE}) is below "
            f"PERSONALIZE['EXPOSURE_BATCH_SIZE'] ({s.EXPOSURE_BATCH_SIZE}).",
            hint="The buffer must hold at least one batch: raise EXPOSURE_BUFFER_SIZE.",
            obj="PERSONALIZE['EXPOSURE_BUFFER_SIZE']", id="personalize.E049",
        ))
    return errors


def _environment_checks() -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    # the schema itself needs neither; the docs page needs the template and the static files
    missing = [app for app in DOCS_APPS if not apps.is_installed(app)]
    if missing:
        errors.append(Warning(
            f"{' and '.join(map(repr, missing))} "
            f"{'is' if len(missing) == 1 else 'are'} not in INSTALLED_APPS: the personalize "
            "API docs page cannot show Swagger UI.",
            hint=f"Add {', '.join(map(repr, missing))} to INSTALLED_APPS (the docs page's "
                 "template and its bundled Swagger UI files).",
            obj="settings.INSTALLED_APPS", id="personalize.W042",
        ))
    alias = personalize_settings.CACHE_ALIAS
    backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
    if backend.endswith("DummyCache"):
        errors.append(Warning(
            f"The cache {alias!r} is a dummy cache: recommendation blocks are never cached "
            "and every page view runs the pipeline.",
            hint="Use django-redis (or the local-memory cache for one process).",
            obj="PERSONALIZE['CACHE_ALIAS']", id="personalize.W043",
        ))
    engines: list[dict[str, Any]] = list(settings.TEMPLATES)
    django_engines = [
        engine for engine in engines
        if engine.get("BACKEND") == "django.template.backends.django.DjangoTemplates"
    ]
    if django_engines and not any(
        REQUEST_PROCESSOR in engine.get("OPTIONS", {}).get("context_processors", ())
        for engine in django_engines
    ):
        errors.append(Warning(
            "No Django template engine has the request context processor: "
            "{% recommended_for_you %} cannot tell who the visitor is.",
            hint=f"Add {REQUEST_PROCESSOR!r} to TEMPLATES[...]['OPTIONS']['context_processors'].",
            obj="settings.TEMPLATES", id="personalize.W044",
        ))
    return errors


def placement_checks() -> list[CheckMessage]:
    """Checks of the placement rows (run with ``manage.py check --database default``)."""
    errors: list[CheckMessage] = []
    try:
        # ``migrate`` runs database checks before the table exists
        if Placement._meta.db_table not in connection.introspection.table_names():
            return []
        rows = list(Placement.objects.order_by("name"))
    except DatabaseError:
        return []
    names = _configured_names()
    for placement in rows:
        try:
            parse_filters(placement.filters)
        except FilterError as exc:
            errors.append(Error(
                f"Placement {placement.name!r} has invalid filters: {exc}",
                hint="Fix the filters in the admin; docs/serving.md lists the keys.",
                obj=f"Placement {placement.name!r}", id="personalize.E044",
            ))
        if names is None:
            continue
        for field in ("strategy", "fallback"):
            value = getattr(placement, field)
            if value and value not in names:
                errors.append(Error(
                    f"Placement {placement.name!r} uses {field} {value!r}, which is not a "
                    "configured strategy.",
                    hint=f"Choose one of: {', '.join(sorted(names))}.",
                    obj=f"Placement {placement.name!r}", id="personalize.E045",
                ))
    return errors


def experiment_checks() -> list[CheckMessage]:
    """Checks of the running experiments (run with ``manage.py check --database default``)."""
    errors: list[CheckMessage] = []
    try:
        if Experiment._meta.db_table not in connection.introspection.table_names():
            return []
        rows = list(Experiment.objects.filter(status=Experiment.Status.RUNNING)
                    .prefetch_related("variants").order_by("name"))
    except DatabaseError:
        return []
    names = _configured_names()
    for experiment in rows:
        variants = sorted(experiment.variants.all(), key=lambda v: v.pk)
        problems = experiment_problems(experiment, variants)
        for variant in variants:
            try:
                config = (parse_variant_config(variant.config)
                          if variant.kind == Variant.Kind.CONFIG else {})
            except VariantConfigError as exc:
                problems.append(f"variant {variant.key!r}: invalid configuration ({exc})")
                continue
            used = [variant.strategy] if variant.kind == Variant.Kind.STRATEGY else []
            used += [config[k] for k in ("strategy", "fallback") if k in config]
            if names is not None:
                problems += [f"variant {variant.key!r} uses strategy {name!r}, which is not "
                             "configured" for name in used if name and name not in names]
        for problem in dict.fromkeys(problems):  # each once, in order
            errors.append(Error(
                f"Experiment {experiment.name!r} cannot run: {problem}.",
                hint="Fix the experiment in the admin (docs/serving.md, \"Experiments\").",
                obj=f"Experiment {experiment.name!r}", id="personalize.E048",
            ))
    return errors
