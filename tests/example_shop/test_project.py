"""The demo project itself, run the way `make demo` runs it: in a subprocess with its settings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import hung_server

REPO = Path(__file__).resolve().parents[2]
ENV_KEYS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")


def shop_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env.update(EXAMPLE_SHOP_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="example_shop.settings")
    env.update(extra)
    return env


def run(args, env):
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )


def test_system_checks_pass(tmp_path):
    result = run(["manage.py", "check"], shop_env(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_migrations_are_complete(tmp_path):
    result = run(["manage.py", "makemigrations", "--check", "--dry-run"], shop_env(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout


SHOW_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "persistent": [settings.DATABASES["default"].get(key)
                   for key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS")],
    "cache": settings.CACHES["default"]["BACKEND"],
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": settings.CELERY_BROKER_URL,
    "data_dir": settings.PERSONALIZE["DATA_DIR"],
    "strategies": sorted(settings.PERSONALIZE["STRATEGIES"]),
    "apps": settings.INSTALLED_APPS,
}))
"""


def settings_with(tmp_path, **env):
    shell_env = shop_env(tmp_path, **env)
    if "PERSONALIZE_DATA_DIR" not in env:
        shell_env.pop("PERSONALIZE_DATA_DIR", None)  # `make test` exports it; the default is the subject
    result = run(["-c", "import django; django.setup()\n" + SHOW_SETTINGS], shell_env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_embedded_defaults(tmp_path):
    s = settings_with(tmp_path)
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["db_name"] == str(tmp_path / "example_shop.sqlite3")
    assert s["cache"].endswith("LocMemCache")
    assert s["eager"] is True
    assert Path(s["data_dir"]) == REPO.parent / "shared" / "data"
    assert {"popular", "trending", "item_knn", "ease", "hybrid"} <= set(s["strategies"])
    assert s["apps"][-4:] == ["drf_spectacular", "drf_spectacular_sidecar", "personalize",
                              "example_shop.shop"]


def test_services_from_the_environment(tmp_path):
    pytest.importorskip("dj_database_url")
    s = settings_with(
        tmp_path, DATABASE_URL="postgres://shop@db.example:5432/shop",
        REDIS_URL="redis://cache.example:6379/1", CELERY_BROKER_URL="redis://cache.example:6379/2",
        PERSONALIZE_DATA_DIR="/srv/data",
    )
    assert s["engine"] == "django.db.backends.postgresql"
    assert s["db_name"] == "shop"
    # kept connections, checked before reuse (a restarted database fails no request)
    assert s["persistent"] == [60, True]
    assert s["cache"] == "django_redis.cache.RedisCache"
    assert s["eager"] is False
    assert s["broker"] == "redis://cache.example:6379/2"
    assert s["data_dir"] == "/srv/data"


def test_celery_app_is_configured_from_settings(tmp_path):
    code = ("import django; django.setup()\n"
            "from example_shop.celery import app\n"
            "import json; print(json.dumps([app.main, app.conf.task_always_eager]))")
    result = run(["-c", code], shop_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["example_shop", True]


HUNG_REDIS = """
import json
import time
from datetime import UTC, datetime

import django

django.setup()
from django.core.management import call_command

call_command("migrate", verbosity=0)
import personalize
from personalize.backends.cache import reset_outages
from personalize.models import Event, Item, Subject

items = [Item.objects.create(external_id=f"item-{n}", title=f"Item {n}") for n in range(12)]
shopper = Subject.objects.create(visitor_id="shopper")
Event.objects.bulk_create([
    Event(subject=shopper, item=items[n % 4], event_type="view",
          timestamp=datetime(2024, 1, 1, n, tzinfo=UTC))
    for n in range(12)
])
personalize.grant_consent(shopper)
timings = {}


def timed(name, call):
    reset_outages()  # as once CACHE_RETRY_INTERVAL is over: the cache is tried again
    started = time.perf_counter()
    result = call()
    timings[name] = time.perf_counter() - started
    return result


rows = timed("recommend", lambda: personalize.recommend(None, "home", limit=4))
event = timed("track", lambda: personalize.track(shopper, "view", item=items[5]))
started = time.perf_counter()
personalize.recommend(shopper, "home", limit=4)  # within the retry interval
timings["meanwhile"] = time.perf_counter() - started
print(json.dumps({"timings": timings, "rows": len(rows), "stored": event is not None}))
"""


def test_a_hung_redis_costs_a_request_about_the_socket_timeout(tmp_path):
    with hung_server() as port:
        env = shop_env(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/1")
        try:
            result = subprocess.run(
                [sys.executable, "-c", HUNG_REDIS], cwd=REPO, env=env, capture_output=True,
                text=True, timeout=90, check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("The demo waited for the hung Redis for more than 90 s")
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["rows"] == 4 and outcome["stored"]  # the fallback block; the event is stored
    timings = outcome["timings"]
    # the demo's socket timeouts are 0.5 s: one of them per call, then the cache is left alone
    assert timings["recommend"] < 1.5 and timings["track"] < 1.5, timings
    assert timings["meanwhile"] < 0.4, timings
