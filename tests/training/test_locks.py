"""The training lock: two trainings of one strategy never overlap."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
from django.core.cache import cache as django_cache
from django.db import connection

from personalize.backends.cache import CacheUnavailable, personalize_cache
from personalize.models import ModelVersion
from personalize.training import service
from personalize.training.locks import (
    CacheLock,
    LockLost,
    TrainingInProgress,
    is_training,
    training_lock,
    training_lock_key,
)
from tests.training import fakes
from tests.training.conftest import make_events, set_options

SERVICES = os.environ.get("PERSONALIZE_TEST_SERVICES") == "1"
REPO = Path(__file__).resolve().parents[2]


def test_a_held_lock_cannot_be_taken_twice():
    first, second = CacheLock("x", timeout=60), CacheLock("x", timeout=60)
    assert first.acquire()
    assert first.locked() and second.locked()
    assert not second.acquire()
    first.release()
    assert not first.locked()
    assert second.acquire()
    second.release()


def test_releasing_does_not_free_someone_elses_lock():
    mine = CacheLock("y", timeout=60)
    assert mine.acquire()
    intruder = CacheLock("y", timeout=60)
    intruder.release()  # never acquired: a no-op
    assert mine.locked()
    mine.release()


def test_training_lock_raises_when_held():
    with training_lock("ease"):
        assert is_training("ease")
        with pytest.raises(TrainingInProgress, match="'ease' is already running"), \
                training_lock("ease"):
            pass  # pragma: no cover
        with training_lock("item_knn"):  # other strategies are independent
            assert is_training("item_knn")
    assert not is_training("ease")


def test_the_lock_is_released_when_the_block_raises():
    with pytest.raises(RuntimeError), training_lock("ease"):
        raise RuntimeError
    assert not is_training("ease")


@pytest.mark.django_db
def test_a_training_reports_already_running_while_the_lock_is_held(fake_strategies, shop):
    with training_lock("cooc"), pytest.raises(TrainingInProgress):
        service.train_strategy("cooc")
    assert ModelVersion.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_trainings_of_one_strategy(fake_strategies, catalog, settings):
    make_events(catalog)
    set_options(settings, "cooc", block=True)
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            outcome["first"] = service.train_strategy("cooc")
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert fakes.STARTED.wait(20), "the first training never reached fit"
        with pytest.raises(TrainingInProgress):
            service.train_strategy("cooc")
        # a different strategy is not blocked by it
        assert service.train_strategy("factors").status == "active"
    finally:
        fakes.RELEASE.set()
        thread.join(30)
    assert outcome["first"].status == "active"
    versions = ModelVersion.objects.filter(strategy="cooc").values_list("version", flat=True)
    assert list(versions) == [1]
    assert not is_training("cooc")


# --- a short time to live, renewed while the holder runs --------------------


def test_a_held_lock_is_renewed_while_its_holder_runs():
    with training_lock("ease", ttl=1) as held:
        time.sleep(2.5)  # more than twice its time to live
        assert is_training("ease")
        assert not CacheLock(training_lock_key("ease"), 1).acquire()
        held.verify()  # still ours
    assert not is_training("ease")


def test_a_lock_nobody_renews_expires_within_its_time_to_live():
    abandoned = CacheLock(training_lock_key("ease"), timeout=1)
    assert abandoned.acquire()  # and its holder dies: nobody renews it
    assert is_training("ease")
    time.sleep(1.3)
    with training_lock("ease", ttl=1):
        assert is_training("ease")


def test_the_default_time_to_live_is_a_minute_renewed_every_twenty_seconds():
    with training_lock("ease") as held:
        assert (held.lock.timeout, held.interval) == (60, 20)


def test_a_lock_taken_over_is_reported_lost(caplog):
    with training_lock("ease", ttl=1) as held:
        # the lock expired while this process could not renew it, and another took it
        intruder = CacheLock(training_lock_key("ease"), 60)
        personalize_cache().delete(intruder.key)
        assert intruder.acquire()
        time.sleep(0.8)  # the next renewal finds the intruder
        with pytest.raises(LockLost, match="'ease' expired while this training ran"):
            held.verify()
    assert is_training("ease")  # the intruder's lock was left alone
    intruder.release()
    assert "was taken over by another process" in caplog.text


def test_a_renewal_the_cache_refuses_is_tried_again(caplog):
    real_renew = CacheLock.renew
    calls = []

    def flaky(lock):
        calls.append(1)
        if len(calls) == 1:
            raise CacheUnavailable("default")
        return real_renew(lock)

    with mock.patch.object(CacheLock, "renew", flaky), training_lock("ease", ttl=1) as held:
        time.sleep(1.2)
        held.verify()
    assert len(calls) >= 2
    assert "Cannot renew the training lock of ease; trying again" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_training_that_lost_its_lock_does_not_activate(fake_strategies, catalog, settings):
    make_events(catalog)
    set_options(settings, "cooc", block=True)
    settings.PERSONALIZE = {**settings.PERSONALIZE, "TRAINING_LOCK_TTL": 1}
    outcome: dict[str, object] = {}

    def train() -> None:
        try:
            service.train_strategy("cooc")
        except Exception as exc:
            outcome["raised"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=train)
    thread.start()
    try:
        assert fakes.STARTED.wait(20), "the training never reached fit"
        intruder = CacheLock(training_lock_key("cooc"), 60)
        personalize_cache().delete(intruder.key)
        assert intruder.acquire()
        time.sleep(0.8)
    finally:
        fakes.RELEASE.set()
        thread.join(30)
    assert isinstance(outcome["raised"], LockLost)
    version = ModelVersion.objects.get(strategy="cooc")
    assert version.status == "failed" and version.note.startswith("Training failed: LockLost: ")
    intruder.release()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_cache_while_renewing_does_not_stop_a_training(fake_strategies, catalog,
                                                                      settings):
    make_events(catalog)
    settings.PERSONALIZE = {**settings.PERSONALIZE, "TRAINING_LOCK_TTL": 1}
    set_options(settings, "cooc", block=True)
    thread = threading.Thread(target=lambda: (service.train_strategy("cooc"), connection.close()))
    with mock.patch.object(CacheLock, "renew", side_effect=CacheUnavailable("default")):
        thread.start()
        assert fakes.STARTED.wait(20)
        time.sleep(1.0)  # renewals fail meanwhile
        fakes.RELEASE.set()
        thread.join(30)
    assert ModelVersion.objects.get(strategy="cooc").status == "active"


# --- a process that holds the lock is killed (real Redis) --------------------

HOLDER = """
import sys
import time

import django

django.setup()
from personalize.training.locks import training_lock

with training_lock("cooc", ttl=2):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.services
@pytest.mark.skipif(not SERVICES, reason="needs PERSONALIZE_TEST_SERVICES=1 (a cache shared "
                                         "between processes: Redis)")
def test_a_killed_holder_frees_the_strategy_within_the_time_to_live():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.testapp.settings",
           "PERSONALIZE_TEST_CACHE_PREFIX": django_cache.key_prefix,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        time.sleep(5)  # two and a half times its time to live: renewed meanwhile
        assert is_training("cooc")
        holder.kill()  # SIGKILL: nothing runs on the way out
        holder.wait(10)
        killed = time.monotonic()
        assert is_training("cooc")
        while not CacheLock(training_lock_key("cooc"), 2).acquire():
            assert time.monotonic() - killed < 2 + 1, "the dead holder's lock outlived its TTL"
            time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait(10)
