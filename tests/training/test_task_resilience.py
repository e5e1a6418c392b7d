"""Training tasks outlive their worker and a blip of the broker or the cache.

Celery's eager API and pushed requests here; tests/training/test_worker.py
kills a real worker's process mid-training.
"""

from __future__ import annotations

from unittest import mock

import pytest
from celery.exceptions import Reject, Retry
from django.db import OperationalError
from kombu.exceptions import OperationalError as BrokerError

from personalize.backends.cache import CacheUnavailable, personalize_cache
from personalize.consent import tasks as consent_tasks
from personalize.models import ModelVersion
from personalize.serving import tasks as serving_tasks
from personalize.training import tasks
from personalize.training.locks import CacheLock, training_lock_key
from personalize.training.service import WORKER_LOST_NOTE
from tests.training.conftest import use_strategies

pytestmark = pytest.mark.django_db

EVERY_TASK = [
    tasks.train_strategy, tasks.train_all, tasks.check_retrain_thresholds, tasks.embed_items,
    tasks.embed_catalog, tasks.embed_chunk, tasks.embed_merge, tasks.embed_pending,
    serving_tasks.precompute_top_n, serving_tasks.precompute_chunk,
    consent_tasks.purge_expired_events,
]


@pytest.mark.parametrize("task", EVERY_TASK, ids=lambda task: task.name.rsplit(".", 1)[-1])
def test_every_task_is_acknowledged_late_and_runs_again_when_its_worker_dies(task):
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True  # requeued (Celery < 5.7)
    assert task.retry_on_worker_lost is True  # sent again as a retry, counted (Celery >= 5.7)
    assert OperationalError in task.autoretry_for
    assert task.retry_backoff and task.retry_jitter and task.max_retries


@pytest.mark.parametrize("task", EVERY_TASK[:-1], ids=lambda task: task.name.rsplit(".", 1)[-1])
def test_an_unreachable_cache_is_retried(task):
    assert CacheUnavailable in task.autoretry_for


def _run_as_delivered(task, *args, retries=0, redelivered=False):
    """Run ``task`` the way a worker does, with the request a delivery carries."""
    task.push_request(id="task-1", args=list(args), kwargs={}, retries=retries,
                      is_eager=False, called_directly=False,
                      delivery_info={"redelivered": redelivered})
    try:
        return task.run(*args)
    finally:
        task.pop_request()


def _dead_runs_lock(name: str) -> CacheLock:
    """The lock a worker that died left behind: held, renewed by nobody."""
    lock = CacheLock(training_lock_key(name), timeout=60)
    assert lock.acquire()
    return lock


@pytest.mark.parametrize(("retries", "redelivered"), [(0, True), (1, False)])
def test_a_rerun_that_finds_the_lock_is_retried_after_its_ttl_not_dropped(
        fake_strategies, shop, settings, retries, redelivered):
    use_strategies(settings, TRAINING_LOCK_TTL=7)
    dead = _dead_runs_lock("cooc")
    with mock.patch.object(tasks.train_strategy, "retry", side_effect=Retry) as retry, \
            pytest.raises(Retry):
        _run_as_delivered(tasks.train_strategy, "cooc", retries=retries, redelivered=redelivered)
    assert retry.call_args.kwargs["countdown"] == 7.0

    dead.release()  # its time to live is over
    result = _run_as_delivered(tasks.train_strategy, "cooc", retries=retries + 1)
    assert (result["status"], result["version"]) == ("active", 1)


def test_a_first_delivery_that_finds_a_running_training_is_done(fake_strategies, shop):
    dead = _dead_runs_lock("cooc")
    with mock.patch.object(tasks.train_strategy, "retry") as retry:
        result = _run_as_delivered(tasks.train_strategy, "cooc")
    assert result == {"strategy": "cooc", "status": "already running"}
    retry.assert_not_called()
    dead.release()


def test_a_rerun_whose_retries_are_spent_reports_already_running(fake_strategies, shop):
    dead = _dead_runs_lock("cooc")
    result = _run_as_delivered(tasks.train_strategy, "cooc",
                               retries=tasks.train_strategy.max_retries, redelivered=True)
    assert result == {"strategy": "cooc", "status": "already running"}
    dead.release()


def test_a_redelivered_training_whose_worker_keeps_dying_is_given_up(fake_strategies, shop):
    for number in (1, 2, 3):
        ModelVersion.objects.create(strategy="cooc", version=number, status="training")
    # the first re-delivery marks the orphans failed, and gives up
    result = _run_as_delivered(tasks.train_strategy, "cooc", redelivered=True)
    assert result["status"] == "failed"
    assert result["note"].startswith("The last 3 trainings of 'cooc' lost their worker")
    assert set(ModelVersion.objects.values_list("note", flat=True)) == {WORKER_LOST_NOTE}
    # a fresh delivery (the schedule, a person) tries again
    assert _run_as_delivered(tasks.train_strategy, "cooc")["status"] == "active"


def test_a_redelivery_after_one_lost_worker_trains(fake_strategies, shop):
    ModelVersion.objects.create(strategy="cooc", version=1, status="training")
    result = _run_as_delivered(tasks.train_strategy, "cooc", redelivered=True)
    assert (result["status"], result["version"]) == ("active", 2)
    assert ModelVersion.objects.get(version=1).note == WORKER_LOST_NOTE


def test_a_cache_error_while_taking_the_lock_is_retried(fake_strategies, shop, settings):
    use_strategies(settings, CACHE_RETRY_INTERVAL=0)  # eager retries run at once
    backend = personalize_cache().backend
    name = "lock" if hasattr(backend, "lock") else "add"
    original = getattr(backend, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            raise ConnectionError("Connection reset by peer")  # what a socket says
        return original(*args, **kwargs)

    task = tasks.train_strategy
    with mock.patch.object(backend, name, side_effect=flaky), \
            mock.patch.object(task, "retry", wraps=task.retry) as retry:
        # throw=False: with eager propagation Celery raises Retry instead of re-running
        result = task.apply(args=["cooc"], throw=False).get()
    assert retry.call_count == 1
    assert isinstance(retry.call_args.kwargs["exc"], CacheUnavailable)
    assert (result["status"], result["version"]) == ("active", 1)


def test_a_retry_that_cannot_be_sent_is_put_back_on_the_queue(fake_strategies):
    task = tasks.train_strategy
    task.push_request(id="task-1", args=["cooc"], kwargs={}, retries=0, is_eager=False,
                      called_directly=False, delivery_info={})
    try:
        with mock.patch("celery.canvas.Signature.apply_async",
                        side_effect=BrokerError("Error 111 connecting to the broker")), \
                pytest.raises(Reject) as rejected:
            task.retry(exc=OperationalError("the database went away"), countdown=5)
    finally:
        task.pop_request()
    assert rejected.value.requeue is True  # Celery's own retry drops the message here
    assert isinstance(rejected.value.reason, BrokerError)
