"""System checks of serving: personalize.E040-E045 and W040-W044, exact messages."""

from __future__ import annotations

import pytest
from django.core.checks import Error, Warning
from django.test import override_settings

from personalize import checks
from personalize.models import Placement

pytestmark = pytest.mark.django_db

BASE = {"LOAD_ENTRY_POINTS": False}
NAMES = "ease, item_knn, popular, transitions, trending"


def run(**personalize):
    with override_settings(PERSONALIZE={**BASE, **personalize}):
        return checks.check_serving()


def test_defaults_pass():
    assert run() == []


def test_e040_oversampling():
    assert run(CANDIDATE_OVERSAMPLING=0) == [Error(
        "PERSONALIZE['CANDIDATE_OVERSAMPLING'] is 0.",
        hint="Use a whole number >= 1 (3 asks strategies for three times the block size).",
        obj="PERSONALIZE['CANDIDATE_OVERSAMPLING']", id="personalize.E040",
    )]


def test_e041_limits():
    assert run(MAX_LIMIT="many") == [Error(
        "PERSONALIZE['MAX_LIMIT'] is 'many'.", hint="Use a whole number of items >= 1.",
        obj="PERSONALIZE['MAX_LIMIT']", id="personalize.E041",
    )]
    assert run(DEFAULT_LIMIT=20, MAX_LIMIT=10) == [Error(
        "PERSONALIZE['DEFAULT_LIMIT'] (20) is above PERSONALIZE['MAX_LIMIT'] (10).",
        hint="Raise MAX_LIMIT or lower DEFAULT_LIMIT.",
        obj="PERSONALIZE['DEFAULT_LIMIT']", id="personalize.E041",
    )]


@pytest.mark.parametrize("key", ["CACHE_TTL", "POPULARITY_CACHE_TTL", "SERVING_ITEM_CACHE_SIZE"])
def test_e042_cache_numbers(key):
    assert run(**{key: -1}) == [Error(
        f"PERSONALIZE[{key!r}] is -1.", hint="Use a whole number >= 0 (0 disables that cache).",
        obj=f"PERSONALIZE[{key!r}]", id="personalize.E042",
    )]


def test_e043_popularity_window():
    assert run(POPULARITY_WINDOW_DAYS=0) == [Error(
        "PERSONALIZE['POPULARITY_WINDOW_DAYS'] is 0.",
        hint="Use a positive number of days, or None to count every event.",
        obj="PERSONALIZE['POPULARITY_WINDOW_DAYS']", id="personalize.E043",
    )]
    assert run(POPULARITY_WINDOW_DAYS=None) == []


def test_w040_w041_strategy_names():
    assert run(POPULARITY_STRATEGY="hot", SIMILAR_STRATEGY="lookalike") == [
        Warning(
            "PERSONALIZE['POPULARITY_STRATEGY'] is 'hot', which is not a configured strategy.",
            hint="Popular items are counted from the database instead. Configure the strategy "
                 f"or set POPULARITY_STRATEGY to one of: {NAMES}.",
            obj="PERSONALIZE['POPULARITY_STRATEGY']", id="personalize.W040",
        ),
        Warning(
            "PERSONALIZE['SIMILAR_STRATEGY'] is 'lookalike', which is not a configured strategy.",
            hint="Similar items fall back to popular items of the same category. Use one of: "
                 f"{NAMES}.",
            obj="PERSONALIZE['SIMILAR_STRATEGY']", id="personalize.W041",
        ),
    ]


def test_w042_not_needed_for_drf_defaults(settings):
    settings.REST_FRAMEWORK = {}  # the schema works with DRF's own DEFAULT_SCHEMA_CLASS
    assert run() == []


def test_w042_sidecar_missing(settings):
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if app != "drf_spectacular_sidecar"]
    assert run() == [Warning(
        "'drf_spectacular_sidecar' is not in INSTALLED_APPS: the personalize API docs page "
        "cannot show Swagger UI.",
        hint="Add 'drf_spectacular_sidecar' to INSTALLED_APPS (the docs page's template and "
             "its bundled Swagger UI files).",
        obj="settings.INSTALLED_APPS", id="personalize.W042",
    )]


def test_w042_both_missing(settings):
    settings.INSTALLED_APPS = [
        app for app in settings.INSTALLED_APPS if not app.startswith("drf_spectacular")]
    assert run() == [Warning(
        "'drf_spectacular' and 'drf_spectacular_sidecar' are not in INSTALLED_APPS: the "
        "personalize API docs page cannot show Swagger UI.",
        hint="Add 'drf_spectacular', 'drf_spectacular_sidecar' to INSTALLED_APPS (the docs "
             "page's template and its bundled Swagger UI files).",
        obj="settings.INSTALLED_APPS", id="personalize.W042",
    )]


def test_w043_dummy_cache(settings):
    settings.CACHES = {**settings.CACHES, "none": {
        "BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert run(CACHE_ALIAS="none") == [Warning(
        "The cache 'none' is a dummy cache: recommendation blocks are never cached and every "
        "page view runs the pipeline.",
        hint="Use django-redis (or the local-memory cache for one process).",
        obj="PERSONALIZE['CACHE_ALIAS']", id="personalize.W043",
    )]


def test_w044_request_context_processor(settings):
    settings.TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates",
                           "APP_DIRS": True, "OPTIONS": {"context_processors": []}}]
    assert run() == [Warning(
        "No Django template engine has the request context processor: "
        "{% recommended_for_you %} cannot tell who the visitor is.",
        hint="Add 'django.template.context_processors.request' to "
             "TEMPLATES[...]['OPTIONS']['context_processors'].",
        obj="settings.TEMPLATES", id="personalize.W044",
    )]


def test_e044_e045_placement_rows():
    Placement.objects.create(name="good", strategy="ease")
    Placement.objects.create(name="bad", filters={"colour": "red"}, strategy="gone",
                             fallback="missing")
    with override_settings(PERSONALIZE=BASE):
        assert checks.check_placements() == []  # only with --database
        result = checks.check_placements(databases=["default"])
    assert result == [
        Error("Placement 'bad' has invalid filters: colour: unknown filter key; valid keys: "
              "available_only, blocked, exclude_categories, exclude_current_item, "
              "exclude_event_types, exclude_window_days, include_categories, pinned",
              hint="Fix the filters in the admin; docs/serving.md lists the keys.",
              obj="Placement 'bad'", id="personalize.E044"),
        Error("Placement 'bad' uses strategy 'gone', which is not a configured strategy.",
              hint=f"Choose one of: {NAMES}.", obj="Placement 'bad'", id="personalize.E045"),
        Error("Placement 'bad' uses fallback 'missing', which is not a configured strategy.",
              hint=f"Choose one of: {NAMES}.", obj="Placement 'bad'", id="personalize.E045"),
    ]


def test_placement_checks_are_quiet_before_migrations(monkeypatch):
    from django.db import connection

    monkeypatch.setattr(connection.introspection, "table_names", lambda *a, **k: [])
    Placement.objects.create(name="bad", filters={"colour": "red"})
    assert checks.check_placements(databases=["default"]) == []


@pytest.mark.parametrize(("settings", "message", "hint"), [
    ({"EXPOSURE_LOGGING": "yes"}, "PERSONALIZE['EXPOSURE_LOGGING'] is 'yes'.",
     "Use True (log each rendered block) or False."),
    ({"EXPOSURE_FLUSH_INTERVAL": -1}, "PERSONALIZE['EXPOSURE_FLUSH_INTERVAL'] is -1.",
     "Use a number of seconds >= 0 (0 writes each exposure during the request)."),
    ({"EXPOSURE_FLUSH_INTERVAL": float("nan")},
     "PERSONALIZE['EXPOSURE_FLUSH_INTERVAL'] is nan.",
     "Use a number of seconds >= 0 (0 writes each exposure during the request)."),
    ({"EXPOSURE_BATCH_SIZE": 0}, "PERSONALIZE['EXPOSURE_BATCH_SIZE'] is 0.",
     "Use a whole number of exposures >= 1."),
    ({"EXPOSURE_BUFFER_SIZE": 2.5}, "PERSONALIZE['EXPOSURE_BUFFER_SIZE'] is 2.5.",
     "Use a whole number of exposures >= 1."),
])
def test_e049_exposure_settings(settings, message, hint):
    key = next(iter(settings))
    assert run(**settings) == [Error(message, hint=hint, obj=f"PERSONALIZE[{key!r}]",
                                     id="personalize.E049")]


def test_e049_the_buffer_holds_a_batch():
    assert run(EXPOSURE_BATCH_SIZE=500, EXPOSURE_BUFFER_SIZE=100) == [Error(
        "PERSONALIZE['EXPOSURE_BUFFER_SIZE'] (100) is below PERSONALIZE['EXPOSURE_BATCH_SIZE'] "
        "(500).", hint="The buffer must hold at least one batch: raise EXPOSURE_BUFFER_SIZE.",
        obj="PERSONALIZE['EXPOSURE_BUFFER_SIZE']", id="personalize.E049")]
    assert run(EXPOSURE_FLUSH_INTERVAL=0, EXPOSURE_LOGGING=False) == []


def test_e048_running_experiments_that_cannot_run():
    from personalize.models import Experiment, Variant
    from tests.experiments.factories import make_experiment

    make_experiment("home", name="fine")
    make_experiment("home", name="draft", status=Experiment.Status.DRAFT, variants=[])
    make_experiment("cart", name="broken", variants=[
        {"key": "a", "strategy": "gone", "is_control": True},
        {"key": "b", "strategy": "ease", "is_control": True},
        {"key": "c", "kind": Variant.Kind.CONFIG, "config": {"limit": 0}},
        {"key": "d", "kind": Variant.Kind.CONFIG, "config": {"fallback": "missing"}},
        {"key": "e", "kind": Variant.Kind.STRATEGY, "strategy": ""},
    ])
    with override_settings(PERSONALIZE=BASE):
        assert checks.check_experiments() == []  # only with --database
        result = checks.check_experiments(databases=["default"])
    hint = 'Fix the experiment in the admin (docs/serving.md, "Experiments").'
    assert result == [
        Error(f"Experiment 'broken' cannot run: {problem}.", hint=hint,
              obj="Experiment 'broken'", id="personalize.E048")
        for problem in [
            "it needs exactly one control variant, it has 2 (a, b)",
            "variant 'e' serves a strategy but names none",
            "variant 'a' uses strategy 'gone', which is not configured",
            "variant 'c': invalid configuration (limit: must be a whole number from 1 to 100)",
            "variant 'd' uses strategy 'missing', which is not configured",
        ]
    ]
