"""The training lock: two trainings of one strategy never overlap."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from personalize.models import ModelVersion
from personalize.training import service
from personalize.training.locks import (
    CacheLock,
    TrainingInProgress,
    is_training,
    training_lock,
)
from tests.training import fakes
from tests.training.conftest import make_events, set_options


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
