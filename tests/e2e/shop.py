"""The demo shop under test: its server, and helpers the browser tests share.

A real ``manage.py runserver`` with the demo's own settings (``example_shop.settings``)
serves a temporary SQLite database seeded with a slice of the Amazon data and
trained by ``seed_shop`` (the ``demo_server`` fixture in ``conftest.py``; one
server per test module). Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
N_USERS = 500
#: Enough for the home block (a blend of EASE and item kNN, popular as fallback);
#: the embeddings model is left out to keep the test quick.
STRATEGIES = ("popular", "item_knn", "ease", "hybrid")
#: Headless Chromium says "HeadlessChrome" in its user agent, which the tracking bot
#: filter rightly drops (BOT_USER_AGENT_PATTERN); the test browses as a person would.
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
#: The user agent is set on the browser too, not only on the page's context: a beacon
#: sent while the page unloads (the tracker's click) leaves without the context's
#: override, and as "HeadlessChrome" it would be dropped as a bot's.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    f"--user-agent={USER_AGENT}",
]

T = TypeVar("T")


@dataclass
class DemoServer:
    url: str
    db_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def query(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db_path, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()

    def manage(self, *args: str, timeout: int = 300) -> str:
        """Run ``manage.py`` against the server's database; its standard output."""
        return manage(list(args), self.env, timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manage(args: list[str], env: dict[str, str], timeout: int) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Any, url: str, username: str, password: str = "demo") -> None:
    """Sign a shopper in through the shop's login form; lands on the home page."""
    page.goto(url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("[data-testid=login-submit]")
    page.wait_for_url(url + "/")


def home_block(page: Any) -> list[tuple[str, str]]:
    """(ASIN, explanation) of each item in the home "Recommended for You" block."""
    items = page.locator('[data-testid="home-recommendations"] [data-testid="rec-item"]')
    return [
        (item.get_attribute("data-asin") or "",
         " ".join(item.locator(".personalize-explanation").all_inner_texts()))
        for item in items.all()
    ]


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def events_of_user(server: DemoServer, username: str, event_type: str) -> list[str]:
    rows = server.query(
        "SELECT i.external_id FROM personalize_event e "
        "JOIN personalize_subject s ON e.subject_id = s.id "
        "JOIN auth_user u ON s.user_id = u.id "
        "LEFT JOIN personalize_item i ON e.item_id = i.id "
        "WHERE u.username = ? AND e.event_type = ? ORDER BY e.id",
        username, event_type,
    )
    return [row[0] for row in rows]
