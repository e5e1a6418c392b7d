"""Every system check id, with the exact message a site owner sees."""

import pytest
from django.core.checks import Error, Warning
from django.test import override_settings

from personalize import checks
from personalize.strategies.base import Options, Strategy

pytestmark = pytest.mark.django_db


class FakeStrategy(Strategy):
    def fit(self, dataset):
        raise NotImplementedError

    def recommend(self, artifact, history, k, exclude=()):
        return []


FAKE = f"{__name__}.FakeStrategy"
FAKES = {"STRATEGIES": {"fake": FAKE}, "DEFAULT_STRATEGY": "fake", "FALLBACK_STRATEGY": "fake",
         "LOAD_ENTRY_POINTS": False}


def run(check, **personalize):
    with override_settings(PERSONALIZE={**FAKES, **personalize}):
        return check()


def test_e001_unknown_key():
    with override_settings(PERSONALIZE={"CACHE_TLL": 3}):
        assert checks.check_settings_keys() == [Error(
            "PERSONALIZE['CACHE_TLL'] is not a django-personalize setting.",
            hint="Check the spelling against docs/settings.md.",
            obj="settings.PERSONALIZE", id="personalize.E001",
        )]


def test_e001_removed_key_says_what_replaces_it():
    with override_settings(PERSONALIZE={"TRAINING_LOCK_TIMEOUT": 3600}):
        assert checks.check_settings_keys() == [Error(
            "PERSONALIZE['TRAINING_LOCK_TIMEOUT'] was removed: a running training now renews its "
            "lock; TRAINING_LOCK_TTL (default 60) is how long the lock outlives a worker that "
            "died. See docs/training.md.",
            hint="Check the spelling against docs/settings.md.",
            obj="settings.PERSONALIZE", id="personalize.E001",
        )]


def test_e001_not_a_dict():
    with override_settings(PERSONALIZE=[1]):
        assert [m.id for m in checks.check_settings_keys()] == ["personalize.E001"]


def test_e002_strategy_path_cannot_be_imported():
    result = run(checks.check_strategies, STRATEGIES={"x": "nowhere.Strategy"},
                 DEFAULT_STRATEGY="x", FALLBACK_STRATEGY="x")
    assert len(result) == 1
    assert result[0].id == "personalize.E002"
    assert result[0].msg.startswith("Strategy 'x': cannot import 'nowhere.Strategy'")
    assert result[0].hint == "Check the dotted path, and that the plugin package is installed."


def test_e002_path_is_not_a_strategy():
    result = run(checks.check_strategies, STRATEGIES={"x": "decimal.Decimal"},
                 DEFAULT_STRATEGY="x", FALLBACK_STRATEGY="x")
    assert result[0].msg == "Strategy 'x': 'decimal.Decimal' is not a Strategy subclass."


def test_e002_bad_options_name_the_option():
    result = run(checks.check_strategies, STRATEGIES={"fake": (FAKE, {"nope": 1})})
    assert result == [Error(
        "Strategy 'fake' has invalid options: FakeStrategy has no option 'nope'; "
        "valid options: (none)",
        hint="Fix the options dict given with the strategy in PERSONALIZE['STRATEGIES'].",
        obj="PERSONALIZE['STRATEGIES']['fake']", id="personalize.E002",
    )]


def test_e002_malformed_entry():
    result = run(checks.check_strategies, STRATEGIES={"fake": 3})
    assert result[0].id == "personalize.E002"
    assert result[0].msg == "Strategy 'fake' is configured as 3."


def test_strategy_can_contribute_its_own_checks():
    class Own(FakeStrategy):
        def check(self):
            return [Warning("own", id="personalize.W099")]

    globals()["Own"] = Own
    try:
        result = run(checks.check_strategies, STRATEGIES={"fake": f"{__name__}.Own"})
    finally:
        del globals()["Own"]
    assert [m.id for m in result] == ["personalize.W099"]


def test_options_validation_errors_reach_the_check():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Opts(Options):
        k: int = 5

        def validate(self):
            if self.k < 1:
                raise ValueError("k must be at least 1")

    class WithOpts(FakeStrategy):
        options_class = Opts

    globals()["WithOpts"] = WithOpts
    try:
        result = run(checks.check_strategies, STRATEGIES={"fake": (f"{__name__}.WithOpts", {"k": 0})})
    finally:
        del globals()["WithOpts"]
    assert result[0].msg == "Strategy 'fake' has invalid options: k must be at least 1"


def test_e006_e007_default_and_fallback_must_be_configured():
    result = run(checks.check_strategies, DEFAULT_STRATEGY="nope", FALLBACK_STRATEGY="gone")
    assert result == [
        Error("PERSONALIZE['DEFAULT_STRATEGY'] is 'nope', which is not a configured strategy.",
              hint="Use one of: fake.", obj="PERSONALIZE['DEFAULT_STRATEGY']",
              id="personalize.E006"),
        Error("PERSONALIZE['FALLBACK_STRATEGY'] is 'gone', which is not a configured strategy.",
              hint="Use one of: fake.", obj="PERSONALIZE['FALLBACK_STRATEGY']",
              id="personalize.E007"),
    ]


def test_e003_catalog_model_missing():
    result = run(checks.check_catalog, CATALOG={"shop.Nope": {}})
    assert result == [Error(
        "Catalog model 'shop.Nope' does not exist.",
        hint="Use 'app_label.ModelName' of an installed app's model.",
        obj="PERSONALIZE['CATALOG']['shop.Nope']", id="personalize.E003",
    )]


def test_e003_catalog_not_a_dict():
    assert [m.id for m in run(checks.check_catalog, CATALOG=["x"])] == ["personalize.E003"]


def test_e004_unknown_mapping_key_and_missing_field():
    result = run(checks.check_catalog, CATALOG={"testapp.Product": {"titel": "name",
                                                                    "text": ["nmae"]}})
    assert result == [
        Error("Unknown catalog mapping key 'titel' for testapp.Product.",
              hint="Valid keys: attributes, available, categories, external_id, prefix, text, title.",
              obj="PERSONALIZE['CATALOG']['testapp.Product']", id="personalize.E004"),
        Error("testapp.Product has no field or attribute 'nmae' (catalog mapping 'text': 'nmae').",
              hint="Name a field, relation, property or method of testapp.Product.",
              obj="PERSONALIZE['CATALOG']['testapp.Product']", id="personalize.E004"),
    ]


def test_e004_attributes_as_a_dict():
    result = run(checks.check_catalog, CATALOG={"testapp.Product": {
        "attributes": {"price": "price", "colour": "colour"}}})
    assert result == [Error(
        "testapp.Product has no field or attribute 'colour' "
        "(catalog mapping 'attributes': 'colour').",
        hint="Name a field, relation, property or method of testapp.Product.",
        obj="PERSONALIZE['CATALOG']['testapp.Product']", id="personalize.E004",
    )]
    result = run(checks.check_catalog, CATALOG={"testapp.Product": {
        "attributes": {"price": ["price"]}}})
    assert result == [Error(
        "Catalog mapping 'attributes' of testapp.Product maps 'price' to ['price'].",
        hint="Map each attribute name to a dotted path, e.g. "
             "{'price': 'price', 'image': 'image.url'}.",
        obj="PERSONALIZE['CATALOG']['testapp.Product']", id="personalize.E004",
    )]
    assert run(checks.check_catalog, CATALOG={"testapp.Product": {
        "attributes": {"price": "price", "department": "category.name"}}}) == []


def test_valid_catalog_passes():
    assert run(checks.check_catalog, CATALOG={"testapp.Product": {
        "title": "name", "categories": "category.name", "available": "in_stock"}}) == []


def test_w001_two_catalog_models_without_prefix():
    result = run(checks.check_catalog, CATALOG={"testapp.Product": {}, "testapp.Category": {}})
    assert result == [Warning(
        "Catalog models testapp.Product, testapp.Category all use their primary key as "
        "external id; ids from different models can collide.",
        hint="Give each a 'prefix' (e.g. 'product:') or an 'external_id' path.",
        obj="PERSONALIZE['CATALOG']", id="personalize.W001",
    )]
    assert run(checks.check_catalog, CATALOG={"testapp.Product": {"prefix": "p:"},
                                              "testapp.Category": {}}) == []


def test_e005_cache_alias_missing():
    assert run(checks.check_cache_alias, CACHE_ALIAS="redis") == [Error(
        "PERSONALIZE['CACHE_ALIAS'] is 'redis', which is not in settings.CACHES.",
        hint="Use one of: default.", obj="PERSONALIZE['CACHE_ALIAS']", id="personalize.E005",
    )]


REDIS = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}


def test_w005_redis_cache_without_socket_timeouts():
    with override_settings(CACHES={"default": REDIS}):
        assert run(checks.check_cache_timeouts) == [Warning(
            "The cache 'default' has no SOCKET_CONNECT_TIMEOUT or SOCKET_TIMEOUT: a Redis server "
            "that accepts connections but does not answer makes requests wait for it without a "
            "limit.",
            hint='Set "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5} (seconds) '
                 "on CACHES['default']; after a timeout the SDK serves without the cache and "
                 "leaves it alone for PERSONALIZE['CACHE_RETRY_INTERVAL'] seconds.",
            obj="settings.CACHES['default']", id="personalize.W005",
        )]
    half = {**REDIS, "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "IGNORE_EXCEPTIONS": True}}
    with override_settings(CACHES={"default": half}):
        assert [m.msg.split(":")[0] for m in run(checks.check_cache_timeouts)] == [
            "The cache 'default' has no SOCKET_TIMEOUT"]


def test_w005_names_the_cache_the_sdk_uses_and_djangos_own_redis_keys():
    django_redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": "redis://127.0.0.1:6379/0"}
    locmem = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    with override_settings(CACHES={"default": locmem, "shared": django_redis}):
        assert run(checks.check_cache_timeouts) == []  # the SDK uses "default"
        [warning] = run(checks.check_cache_timeouts, CACHE_ALIAS="shared")
        assert warning.obj == "settings.CACHES['shared']"
        assert "no socket_connect_timeout or socket_timeout" in warning.msg
    timed = {**django_redis, "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
    with override_settings(CACHES={"default": timed}):
        assert run(checks.check_cache_timeouts) == []
    timed = {**REDIS, "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}}
    with override_settings(CACHES={"default": timed}):
        assert run(checks.check_cache_timeouts) == []


@pytest.mark.parametrize(("setting", "value", "check_id", "message"), [
    ("EXTRA_EVENT_TYPES", {"Bad-Name": 1.0}, "personalize.E008",
     "Event type 'Bad-Name' is not a valid name."),
    ("EXTRA_EVENT_TYPES", {"wish": "high"}, "personalize.E008",
     "Event type 'wish' has weight 'high'; weights are numbers or None."),
    ("CONSENT_MODE", "optin", "personalize.E009", "PERSONALIZE['CONSENT_MODE'] is 'optin'."),
    ("ON_CONSENT_REVOKED", "forget", "personalize.E010",
     "PERSONALIZE['ON_CONSENT_REVOKED'] is 'forget'."),
    ("RATE_LIMITS", {"ip": "10/fortnight"}, "personalize.E011",
     "PERSONALIZE['RATE_LIMITS']['ip'] is '10/fortnight'."),
    ("MAX_BATCH_SIZE", 0, "personalize.E012", "PERSONALIZE['MAX_BATCH_SIZE'] is 0."),
])
def test_event_and_consent_settings(setting, value, check_id, message):
    result = run(checks.check_events_and_consent, **{setting: value})
    assert [(m.id, m.msg) for m in result] == [(check_id, message)]
    assert result[0].hint


def test_w002_data_dir_missing(tmp_path):
    missing = tmp_path / "nope"
    assert run(checks.check_data_dir, DATA_DIR=str(missing)) == [Warning(
        f"PERSONALIZE['DATA_DIR'] is {str(missing)!r}, which is not a directory.",
        hint="Point it (or PERSONALIZE_DATA_DIR) at the folder holding the data sets.",
        obj="PERSONALIZE['DATA_DIR']", id="personalize.W002",
    )]
    assert run(checks.check_data_dir, DATA_DIR=str(tmp_path)) == []


def test_other_checks_stay_quiet_when_settings_are_unreadable():
    with override_settings(PERSONALIZE={"BOGUS": 1}):
        assert checks.check_catalog() == []
        assert checks.check_strategies() == []
