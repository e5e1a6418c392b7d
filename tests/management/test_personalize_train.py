"""manage.py personalize_train: foreground with a progress bar, or queued for a worker."""

from __future__ import annotations

from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from personalize.models import ModelVersion
from personalize.serving import loader
from personalize.training import tasks
from personalize.training.locks import training_lock
from tests.training.conftest import (
    create_catalog,
    make_events,
    set_options,
    use_strategies,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_process_state():
    loader.clear_loaded()
    yield
    loader.clear_loaded()


@pytest.fixture
def trainable(settings, db):
    use_strategies(settings)
    make_events(create_catalog())
    return settings


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("personalize_train", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_trains_every_configured_strategy_in_the_foreground(trainable):
    out, err = run()
    assert "cooc v1: activated (fit " in out and "factors v1: activated" in out
    assert "ndcg@10 " in out and "hit_rate@10 " in out
    assert "No live version: activated." in out
    assert "8/8" in err  # the progress bar: four stages per strategy
    assert set(ModelVersion.objects.values_list("strategy", "status")) == {
        ("cooc", "active"), ("factors", "active")}


def test_named_strategies_only_and_unchanged_versions(trainable):
    run("cooc")
    assert list(ModelVersion.objects.values_list("strategy", flat=True)) == ["cooc"]
    out, _ = run("cooc")
    assert out.strip() == "cooc v1: unchanged, no new events since it was trained (active)."
    out, _ = run("cooc", "--force")
    assert "cooc v2: activated" in out


def test_a_rejected_version_says_why(trainable, settings):
    run("cooc")
    set_options(settings, "cooc", sabotage=True)
    out, _ = run("cooc")
    assert "cooc v2: not activated" in out and "v1 stays live" in out


def test_a_failed_training_is_an_error(trainable, settings):
    set_options(settings, "cooc", fail="runtime")
    with pytest.raises(CommandError, match="Training failed for cooc"):
        run("cooc", "factors")
    assert ModelVersion.objects.get(strategy="factors").status == "active"


def test_a_strategy_that_raises_does_not_stop_the_others(trainable, settings):
    # a transient error is re-raised by the service (a Celery task retries it): here the
    # command reports it and goes on with the next strategy
    set_options(settings, "cooc", fail="operational")
    with pytest.raises(CommandError) as raised:
        run("cooc", "factors")
    assert str(raised.value) == (
        "Training failed for cooc (1 of 2 strategies; the others are listed above). A failed "
        "version's error holds the traceback (admin: Model versions).")
    assert ModelVersion.objects.get(strategy="factors").status == "active"
    failed = ModelVersion.objects.get(strategy="cooc")
    assert failed.status == "failed" and "OperationalError" in failed.error


def test_every_result_is_listed_when_one_fails(trainable, settings):
    set_options(settings, "cooc", fail="operational")
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("personalize_train", stdout=out, stderr=err)
    lines = [line for line in out.getvalue().splitlines() if line]
    assert lines[0] == "cooc: FAILED (OperationalError: the database went away)"
    assert lines[1].startswith("factors v1: activated (fit ")


def test_already_running_is_reported(trainable):
    with training_lock("cooc"):
        out, _ = run("cooc")
    assert out.strip() == "cooc: already running elsewhere; skipped."


def test_unknown_names_are_refused(trainable):
    message = r"No strategy named 'nope'; configured: cooc, factors\."
    with pytest.raises(CommandError, match=message):
        run("cooc", "nope")


def test_queues_for_a_running_worker(trainable):
    with mock.patch.object(tasks, "workers_running", return_value=True), \
            mock.patch.object(tasks.train_strategy, "delay") as delay:
        delay.return_value.id = "task-1"
        out, _ = run("cooc")
    delay.assert_called_once_with("cooc", force=False)
    assert out.strip() == "cooc: queued (task task-1)."


def test_async_and_foreground_flags_skip_the_ping(trainable):
    with mock.patch.object(tasks, "workers_running") as ping, \
            mock.patch.object(tasks.train_strategy, "delay") as delay:
        run("cooc", "--async")
        run("factors", "--foreground")
    ping.assert_not_called()
    delay.assert_called_once_with("cooc", force=False)
    assert ModelVersion.objects.get(strategy="factors").status == "active"


def test_eager_celery_means_no_worker(settings):
    assert tasks.workers_running(0.1) is False  # the test app runs tasks eagerly


def test_an_unreachable_broker_means_no_worker(settings):
    app = tasks.train_strategy.app
    app.conf.task_always_eager = False
    try:
        with mock.patch.object(app.control, "ping", side_effect=OSError("connection refused")):
            assert tasks.workers_running(0.1) is False
        with mock.patch.object(app.control, "ping", return_value=[{"w@h": {"ok": "pong"}}]):
            assert tasks.workers_running(0.1) is True
    finally:
        app.conf.task_always_eager = True


def test_long_steps_inside_a_fit_get_a_bar_of_their_own(settings, db):
    use_strategies(settings, {"reuse": "tests.training.fakes.Reusing"})
    make_events(create_catalog())
    out, err = run("reuse")
    assert "reuse v1: activated" in out
    assert "reuse: counting pairs" in err and "3/3" in err
    _, quiet = run("reuse", "--force", "--verbosity", "0")
    assert quiet == ""
