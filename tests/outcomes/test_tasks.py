"""The scheduled rollup task and its beat entry."""

from __future__ import annotations

from celery.schedules import crontab

from personalize.models import DailyRollup
from personalize.outcomes import tasks
from personalize.outcomes.tasks import update_rollups
from personalize.training.locks import CacheLock
from personalize.training.schedule import beat_schedule
from personalize.training.tasks import ResilientTask
from tests.outcomes.conftest import at


def test_the_task_rolls_up_and_reports(shop, clock):
    shop.show(shop.subject(), 0, [0, 1])
    result = update_rollups.delay().get()
    assert result["status"] == "done"
    assert (result["first_day"], result["last_day"]) == ("2024-03-04", "2024-03-06")
    assert result["exposures"] == 1 and result["rows"] == 1
    assert DailyRollup.objects.get().impressions == 1
    clock.set(at(80))
    assert update_rollups.delay().get()["first_day"] == "2024-03-04"  # within the reach


def test_a_running_rollup_makes_the_task_skip(shop, clock):
    held = CacheLock("rollup", 60)
    assert held.acquire()
    try:
        assert update_rollups.delay().get() == {"status": "already running"}
    finally:
        held.release()


def test_the_task_survives_its_worker():
    assert isinstance(tasks.update_rollups, ResilientTask)
    assert tasks.update_rollups.acks_late


def test_beat_entry_follows_rollup_schedule():
    entries = beat_schedule()
    assert entries["personalize-rollup"] == {
        "task": "personalize.outcomes.tasks.update_rollups", "schedule": crontab(minute=10)}
    quarter = beat_schedule({"ROLLUP_SCHEDULE": {"minute": "*/15"}})
    assert quarter["personalize-rollup"]["schedule"] == crontab(minute="*/15")
    assert "personalize-rollup" not in beat_schedule({"ROLLUP_SCHEDULE": None})

