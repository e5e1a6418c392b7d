"""The training lifecycle on a real Celery worker, real Redis broker, real PostgreSQL.

A module-scoped fixture starts ``celery -A tests.testapp.celery worker`` with
``tests.testapp.worker_settings`` on a private queue, pointed at the *test*
database (so it sees the rows these tests commit) and at the test process's
cache prefix (so both share locks, counters and the model pointer). Skipped
unless ``PERSONALIZE_TEST_SERVICES=1``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery.result import EagerResult
from django.core.cache import cache

from personalize.models import ModelVersion, Subject
from personalize.serving import loader, precompute
from personalize.serving import tasks as serving_tasks
from personalize.serving.loader import get_active_model
from personalize.signals import event_recorded, subject_erased
from personalize.training import activation, tasks
from personalize.training.service import WORKER_LOST_NOTE
from tests.database import database_url
from tests.training.conftest import make_events
from tests.training.fakes import FLAG_VERSION

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        os.environ.get("PERSONALIZE_TEST_SERVICES") != "1",
        reason="needs the real Redis broker and PostgreSQL (set PERSONALIZE_TEST_SERVICES=1)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
WAIT = 90


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    """A running worker on a private queue; stopped (warm, then hard) at the end."""
    from tests.testapp.worker_settings import WORKER_PERSONALIZE

    # The app the shared tasks resolve to here: the *current* Celery app, which
    # is whichever project package was imported last (the test settings install
    # example_shop.shop, whose package creates its own app).
    app = tasks.train_strategy.app

    queue = f"personalize-test-{os.getpid()}"
    nodename = f"{queue}@%h"
    prefix = cache.key_prefix
    with django_db_blocker.unblock():
        url = database_url()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.testapp.worker_settings",
        "PERSONALIZE_TEST_SERVICES": "1",
        "PERSONALIZE_CELERY_EAGER": "0",
        "PERSONALIZE_TEST_QUEUE": queue,
        "PERSONALIZE_TEST_CACHE_PREFIX": prefix,
        "DATABASE_URL": url,
        "PYTHONPATH": str(REPO),
    }
    media = tempfile.mkdtemp(prefix="personalize-test-media-")
    env["PERSONALIZE_TEST_MEDIA_ROOT"] = media
    log_path = Path(tempfile.gettempdir()) / f"{queue}.log"
    with open(log_path, "wb") as log:
        yield from _run_worker(app, env, log, log_path, queue, nodename, media,
                               WORKER_PERSONALIZE)


def _run_worker(app, env, log, log_path, queue, nodename, media, overrides):
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.testapp.celery", "worker", "-l", "info",
         "-Q", queue, "-n", nodename, "--concurrency", "2", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    saved = {key: app.conf[key] for key in ("task_always_eager", "task_default_queue")}
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    try:
        deadline = time.monotonic() + WAIT
        while not app.control.ping(timeout=0.5, destination=[nodename.replace("%h", _host())]):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("The Celery worker did not start:\n" + log_path.read_text())
        yield {"app": app, "overrides": overrides, "log": str(log_path), "media": media,
               "node": nodename.replace("%h", _host())}
    finally:
        app.conf.update(saved)
        process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
        shutil.rmtree(media, ignore_errors=True)


def _host() -> str:
    import socket

    return socket.gethostname()


@pytest.fixture
def on_worker(worker, transactional_db, settings):
    """Each test: the worker's settings here too, clean flags, a fresh process state."""
    settings.PERSONALIZE = {**settings.PERSONALIZE, **worker["overrides"]}
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": worker["media"]},
    }}
    cache.delete_many(["fail", "block", "sabotage", "started", "release"], version=FLAG_VERSION)
    loader.clear_loaded()
    yield worker
    cache.delete_many(["fail", "block", "sabotage", "started", "release"], version=FLAG_VERSION)


def _flag(name: str, value: object) -> None:
    cache.set(name, value, version=FLAG_VERSION, timeout=300)


def _wait_for(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"Timed out waiting for {what}")


def test_full_cycle_and_the_gate_on_a_real_worker(on_worker, catalog):
    make_events(catalog)

    sent = tasks.train_strategy.delay("cooc")
    assert not isinstance(sent, EagerResult)  # it went through the broker
    first = sent.get(timeout=WAIT)
    assert first["status"] == "active" and first["version"] == 1
    # the worker published the pointer in the shared Redis cache; this process follows it
    assert cache.get(activation.pointer_key("cooc"))["version"] == 1
    assert get_active_model("cooc").version == 1

    _flag("sabotage", True)
    worse = tasks.train_strategy.delay("cooc", force=True).get(timeout=WAIT)
    assert worse["status"] == "rejected" and "v1 stays live" in worse["note"]

    _flag("sabotage", False)
    _flag("fail", "runtime")
    failed = tasks.train_strategy.delay("cooc", force=True).get(timeout=WAIT)
    assert failed["status"] == "failed"
    assert "RuntimeError" in ModelVersion.objects.get(strategy="cooc", version=3).error
    assert ModelVersion.objects.get(strategy="cooc", status="active").version == 1
    assert get_active_model("cooc").version == 1


def test_two_concurrent_trainings_on_a_real_worker(on_worker, catalog):
    make_events(catalog)
    _flag("block", True)
    first = tasks.train_strategy.delay("cooc")
    _wait_for(lambda: cache.get("started", version=FLAG_VERSION), "the first fit to start")
    second = tasks.train_strategy.delay("cooc").get(timeout=WAIT)
    assert second == {"strategy": "cooc", "status": "already running"}
    _flag("release", True)
    assert first.get(timeout=WAIT)["status"] == "active"
    assert ModelVersion.objects.filter(strategy="cooc").count() == 1


def test_threshold_trigger_rollback_and_erasure_on_a_real_worker(on_worker, catalog):
    subjects = make_events(catalog)
    tasks.train_all.delay().get(timeout=WAIT)
    _wait_for(lambda: ModelVersion.objects.filter(status="active").count() == 2,
              "both strategies to be trained")

    # threshold: 10 new events, counted in Redis by this process's receiver
    new = make_events(catalog, n_subjects=2, per_subject=5,
                      start=datetime(2024, 3, 5, tzinfo=UTC))
    event_recorded.send(sender=None, subject_ids={s.pk for s in new}, item_ids=set(), count=10)
    queued = tasks.check_retrain_thresholds.delay().get(timeout=WAIT)
    assert queued == ["cooc", "factors"]
    _wait_for(lambda: ModelVersion.objects.filter(version=2, status="active").count() == 2,
              "the triggered trainings")

    # rollback here; the worker's next pointer check serves v1
    activation.rollback("cooc", 1)
    subject = subjects[0]
    assert serving_tasks.precompute_chunk.delay("cooc", [subject.pk], 5).get(timeout=WAIT) == 1
    assert cache.get(precompute.topn_key("cooc", subject.pk))["version"] == 1

    # erasure here: the worker forgets the subject's trained vector too
    erased = subjects[1]
    other = subjects[2]
    erased_pk, erased_key = erased.pk, erased.key
    Subject.objects.filter(pk=erased_pk).delete()
    subject_erased.send(sender=Subject, subject_id=erased_pk, key=erased_key, reason="erasure")
    assert serving_tasks.precompute_chunk.delay("factors", [erased_pk], 5).get(timeout=WAIT) == 0
    assert serving_tasks.precompute_chunk.delay("factors", [other.pk], 5).get(timeout=WAIT) == 1


def _pool_process_running(worker, task_id: str) -> int | None:
    """The pid of the worker's pool process running ``task_id`` (Celery's inspect API)."""
    replies = worker["app"].control.inspect(destination=[worker["node"]], timeout=1).active()
    for running in (replies or {}).values():
        for task in running:
            if task["id"] == task_id:
                return int(task["worker_pid"])
    return None


def test_a_training_whose_worker_process_is_killed_runs_again(on_worker, catalog):
    make_events(catalog)
    _flag("block", True)
    sent = tasks.train_strategy.delay("cooc")
    _wait_for(lambda: cache.get("started", version=FLAG_VERSION), "the fit to start")
    pid = _wait_for(lambda: _pool_process_running(on_worker, sent.id), "the running task's pid")
    cache.delete_many(["block", "started"], version=FLAG_VERSION)  # the next run does not wait

    os.kill(pid, signal.SIGKILL)  # out of memory, say: the process dies mid-fit

    # the task runs again (its lock, no longer renewed, expires within TRAINING_LOCK_TTL)
    result = sent.get(timeout=WAIT)
    assert (result["status"], result["version"]) == ("active", 2)
    dead = ModelVersion.objects.get(strategy="cooc", version=1)
    assert (dead.status, dead.note) == ("failed", WORKER_LOST_NOTE)
    assert get_active_model("cooc").version == 2
