"""System checks personalize.E030-E033, E047, W030 and W033."""

from __future__ import annotations

from django.core.checks import Error, Warning

from personalize.checks import check_tracking


def run(settings, **overrides):
    settings.PERSONALIZE = {**settings.PERSONALIZE, **overrides}
    return check_tracking()


def test_default_test_settings_pass(settings):
    assert check_tracking() == []


def test_e030_bad_bot_pattern(settings):
    assert run(settings, BOT_USER_AGENT_PATTERN="bot(") == [Error(
        "PERSONALIZE['BOT_USER_AGENT_PATTERN'] is not a valid regular expression: "
        "missing ), unterminated subpattern at position 3.",
        hint="Fix the pattern; it is matched case-insensitively with re.search().",
        obj="PERSONALIZE['BOT_USER_AGENT_PATTERN']", id="personalize.E030",
    )]


def test_e031_samesite(settings):
    assert run(settings, VISITOR_COOKIE_SAMESITE="lax") == [Error(
        "PERSONALIZE['VISITOR_COOKIE_SAMESITE'] is 'lax'.",
        hint="Use 'Lax' (the default), 'Strict' or 'None'.",
        obj="PERSONALIZE['VISITOR_COOKIE_SAMESITE']", id="personalize.E031",
    )]
    assert run(settings, VISITOR_COOKIE_SAMESITE="None") == [Error(
        "PERSONALIZE['VISITOR_COOKIE_SAMESITE'] is 'None' but VISITOR_COOKIE_SECURE is off.",
        hint="Browsers reject SameSite=None cookies that are not Secure; "
             "set VISITOR_COOKIE_SECURE = True (HTTPS) or use 'Lax'.",
        obj="PERSONALIZE['VISITOR_COOKIE_SAMESITE']", id="personalize.E031",
    )]
    assert run(settings, VISITOR_COOKIE_SAMESITE="None", VISITOR_COOKIE_SECURE=True) == []


def test_e032_server_authentication(settings):
    obj = "PERSONALIZE['SERVER_AUTHENTICATION_CLASSES']"
    assert run(settings, SERVER_AUTHENTICATION_CLASSES="x.Y") == [Error(
        f"{obj} must be a list of dotted paths, not 'x.Y'.",
        hint="For example ['rest_framework.authentication.TokenAuthentication'], "
             "or None for the default.",
        obj=obj, id="personalize.E032",
    )]
    assert run(settings, SERVER_AUTHENTICATION_CLASSES=["nowhere.Auth"]) == [Error(
        "Cannot import server authentication class 'nowhere.Auth': No module named 'nowhere'.",
        hint="Name a rest_framework.authentication.BaseAuthentication subclass by its dotted "
             "path, and install what it needs.",
        obj=obj, id="personalize.E032",
    )]
    assert run(settings, SERVER_AUTHENTICATION_CLASSES=["personalize.models.Item"]) == [Error(
        "'personalize.models.Item' is not a server authentication class.",
        hint="Subclass rest_framework.authentication.BaseAuthentication.",
        obj=obj, id="personalize.E032",
    )]
    assert run(settings, SERVER_AUTHENTICATION_CLASSES=[
        "rest_framework.authentication.BasicAuthentication"]) == []


def test_e033_ranges_and_limits(settings):
    assert run(settings, RATING_RANGE=(5, 1)) == [Error(
        "PERSONALIZE['RATING_RANGE'] is (5, 1).",
        hint="Use a (low, high) pair of numbers with low < high, e.g. (0.5, 5.0).",
        obj="PERSONALIZE['RATING_RANGE']", id="personalize.E033",
    )]
    assert run(settings, RATING_RANGE=(0.5, 5.0), MAX_BODY_BYTES=0) == [Error(
        "PERSONALIZE['MAX_BODY_BYTES'] is 0.",
        hint="Use a positive number.",
        obj="PERSONALIZE['MAX_BODY_BYTES']", id="personalize.E033",
    )]


def test_w030_middleware_missing(settings):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "personalize.tracking.middleware.VisitorMiddleware"
    ]
    assert check_tracking() == [Warning(
        "VisitorMiddleware is not installed: anonymous visitors get no subject, "
        "so they can be neither tracked nor personalized.",
        hint="Add 'personalize.tracking.middleware.VisitorMiddleware' to MIDDLEWARE "
             "after AuthenticationMiddleware.",
        obj="settings.MIDDLEWARE", id="personalize.W030",
    )]


def test_w033_sqlite_file_without_immediate_transactions():
    from personalize.tracking.checks import sqlite_lock_warnings

    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/site.sqlite3"}
    assert sqlite_lock_warnings("default", sqlite) == [Warning(
        "DATABASES['default'] is SQLite without OPTIONS['transaction_mode'] = 'IMMEDIATE': "
        "two requests storing events at once can fail with 'database is locked' "
        "(the events endpoint answers 503 and a browser beacon's events are lost).",
        hint="Set DATABASES['default']['OPTIONS'] = {'transaction_mode': 'IMMEDIATE', "
             "'init_command': 'PRAGMA journal_mode=WAL;'}, or use PostgreSQL.",
        obj="settings.DATABASES['default']", id="personalize.W033",
    )]
    immediate = {**sqlite, "OPTIONS": {"transaction_mode": "immediate", "timeout": 20}}
    assert sqlite_lock_warnings("default", immediate) == []
    assert sqlite_lock_warnings("default", {**sqlite, "NAME": ":memory:"}) == []
    assert sqlite_lock_warnings(
        "default", {"ENGINE": "django.db.backends.postgresql", "NAME": "shop"}) == []


def test_the_demo_shop_database_passes_w033(monkeypatch, tmp_path):
    """The demo runs on an SQLite file with concurrent beacons: it must not warn."""
    import runpy
    from pathlib import Path

    from personalize.tracking.checks import sqlite_lock_warnings

    monkeypatch.setenv("EXAMPLE_SHOP_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    demo = runpy.run_path(str(Path(__file__).resolve().parents[2] / "example_shop" / "settings.py"))
    database = demo["DATABASES"]["default"]
    assert database["ENGINE"].endswith("sqlite3")
    assert sqlite_lock_warnings("default", database) == []


def test_e030_bot_list_is_not_a_bool(settings):
    assert run(settings, BOT_USER_AGENT_LIST="yes") == [Error(
        "PERSONALIZE['BOT_USER_AGENT_LIST'] is 'yes'.",
        hint="Use True (match the crawler-user-agents list too) or False (only "
             "BOT_USER_AGENT_PATTERN).",
        obj="PERSONALIZE['BOT_USER_AGENT_LIST']", id="personalize.E030",
    )]


def test_e047_history_half_lives(settings):
    obj = "PERSONALIZE['HISTORY_HALF_LIFE_HOURS']"
    hint = ('Map event types to hours, e.g. {"view": 12, "purchase": 24}; None (or a type '
            "left out) keeps an event's full weight, and {} switches the decay off.")
    assert run(settings, HISTORY_HALF_LIFE_HOURS=24) == [Error(
        f"{obj} is 24, not a dict.", hint=hint, obj=obj, id="personalize.E047")]
    assert run(settings, HISTORY_HALF_LIFE_HOURS={"view": 0, "purchase": "1d", "like": None}) == [
        Error(f"{obj}['view'] is 0.", hint=hint, obj=obj, id="personalize.E047"),
        Error(f"{obj}['purchase'] is '1d'.", hint=hint, obj=obj, id="personalize.E047"),
    ]
    [unknown] = run(settings, HISTORY_HALF_LIFE_HOURS={"veiw": 12})
    assert unknown.id == "personalize.E047" and "'veiw'" in unknown.msg
    assert unknown.hint.startswith("Use types of EVENT_TYPES / EXTRA_EVENT_TYPES: add_to_cart,")
    assert run(settings, HISTORY_HALF_LIFE_HOURS={"wishlist": 48.0},
               EXTRA_EVENT_TYPES={"wishlist": 3.0}) == []
    assert run(settings, HISTORY_HALF_LIFE_HOURS=None) == []
    assert run(settings, HISTORY_HALF_LIFE_HOURS={}) == []
