"""Fixtures of the browser tests: the demo shop's server, headless Chromium, a page."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.shop import (
    CHROMIUM,
    CHROMIUM_ARGS,
    N_USERS,
    REPO,
    STRATEGIES,
    USER_AGENT,
    DemoServer,
    free_port,
    manage,
)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[DemoServer]:
    """The demo shop, migrated, seeded and trained, served by runserver (one per module)."""
    var_dir = tmp_path_factory.mktemp("example_shop_var")
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="example_shop.settings", EXAMPLE_SHOP_VAR_DIR=str(var_dir),
        PERSONALIZE_DATA_DIR=str(data_dir), DEBUG="1", PYTHONUNBUFFERED="1",
    )
    manage(["migrate", "--noinput", "-v0"], env, timeout=300)
    strategies = [arg for name in STRATEGIES for arg in ("--strategy", name)]
    manage(["seed_shop", "--limit-users", str(N_USERS), "--no-progress", *strategies], env,
           timeout=600)

    port = free_port()
    log = (var_dir / "runserver.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("runserver did not come up:\n"
                            + (var_dir / "runserver.log").read_text()[-3000:])
            time.sleep(0.5)
        yield DemoServer(url=url, db_path=var_dir / "example_shop.sqlite3", env=env)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright for Python is missing")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, user_agent=USER_AGENT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()
