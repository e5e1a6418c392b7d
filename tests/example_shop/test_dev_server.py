"""The quick start's set-up as it runs: a dev server, and ``manage.py`` commands in other processes.

The demo's defaults are the quick start's recipe: SQLite, Django's local-memory
cache (one per process) and eager Celery. A model that ``manage.py
personalize_train`` trains in its own process is served by the running server
at once, not when a pointer cached in the server's memory expires.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.example_shop.test_project import REPO, run, shop_env

MOST_VIEWED = (
    "from django.db.models import Count\n"
    "from personalize.models import Event\n"
    "print(Event.objects.values_list('item__external_id').annotate(n=Count('id'))"
    ".order_by('-n', 'item__external_id')[0][0])"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _first_strategy(url: str) -> str | None:
    with urllib.request.urlopen(url, timeout=10) as response:
        results = json.load(response)["results"]
    return results[0]["strategy"] if results else None


def _wait_for_server(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail("The dev server stopped:\n" + log.read_text())
        try:
            _first_strategy(url)
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail("The dev server did not answer:\n" + log.read_text())


def test_a_model_trained_by_another_process_is_served_at_once(tmp_path, data_dir):
    env = shop_env(tmp_path, PERSONALIZE_DATA_DIR=str(data_dir))
    for args in (["manage.py", "migrate", "-v", "0"],
                 ["manage.py", "seed_shop", "--limit-users", "30", "--no-train", "--no-progress"]):
        result = run(args, env)
        assert result.returncode == 0, result.stderr + result.stdout
    item = run(["manage.py", "shell", "-c", MOST_VIEWED], env).stdout.split()[-1]
    url = f"http://127.0.0.1:{_free_port()}"
    log = tmp_path / "runserver.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", url.removeprefix("http://"), "--noreload"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    similar = f"{url}/api/personalize/items/{item}/similar/?limit=5"
    try:
        _wait_for_server(similar, server, log)
        # nothing trained: popular items of the item's category
        assert _first_strategy(similar) == "popular"

        trained = run(["manage.py", "personalize_train", "item_knn"], env)
        assert trained.returncode == 0, trained.stderr + trained.stdout
        assert "item_knn v1: activated" in trained.stdout

        # the server checks the live version every ACTIVE_MODEL_CHECK_INTERVAL (1 s)
        deadline = time.monotonic() + 3
        while (served := _first_strategy(similar)) != "item_knn":
            if time.monotonic() > deadline:
                pytest.fail(f"3 s after the training the server still serves {served!r}")
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(10)
