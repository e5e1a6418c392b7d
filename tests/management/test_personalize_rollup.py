"""manage.py personalize_rollup: the incremental run, rebuilds of a range, progress, summary."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from personalize.models import DailyRollup, RollupRun
from personalize.training.locks import CacheLock
from tests.outcomes.conftest import Clock, Shop, at

pytestmark = pytest.mark.django_db


@pytest.fixture
def shown(monkeypatch, db):
    clock, shop = Clock(monkeypatch), Shop()
    ann = shop.subject()
    for hours in (0, 24, 48):
        block = shop.show(ann, hours, [0, 1])
        shop.click(ann, block, 1, hours + 1)
    clock.set(at(60))
    return clock


def run(*args, verbosity=1):
    out, err = StringIO(), StringIO()
    call_command("personalize_rollup", *args, stdout=out, stderr=err, verbosity=verbosity)
    return out.getvalue(), err.getvalue()


def test_without_arguments_it_catches_up(shown):
    out, err = run()
    assert out.startswith("Rolled up 3 exposure(s) of 2024-03-04 to 2024-03-06 into 3 daily "
                          "row(s); 0 experiment outcome(s), 0 bandit allocation(s) updated in ")
    assert "daily rollups" in err and "3/3" in err
    assert RollupRun.objects.get().caught_up


def test_since_and_until_rebuild_those_days_only(shown):
    run()
    DailyRollup.objects.update(clicks=0)
    out, _ = run("--since", "2024-03-05", "--until", "2024-03-05")
    assert "of 2024-03-05 into 1 daily row(s)" in out
    assert dict(DailyRollup.objects.values_list("day__day", "clicks")) == {4: 0, 5: 1, 6: 0}


def test_quiet_means_no_bar(shown):
    out, err = run("--since", "2024-03-01", verbosity=0)
    assert err == "" and "into 3 daily row(s)" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "04/03/2024"], "--since '04/03/2024' is not a day; use YYYY-MM-DD."),
    (["--until", "2024-03-04"], "--until needs --since: the first day to rebuild."),
    (["--since", "2024-03-05", "--until", "2024-03-04"],
     "--until 2024-03-04 is before --since 2024-03-05."),
])
def test_bad_ranges_are_refused(shown, args, message):
    with pytest.raises(CommandError) as error:
        run(*args)
    assert str(error.value) == message


def test_a_running_rollup_is_reported(shown):
    held = CacheLock("rollup", 60)
    assert held.acquire()
    try:
        with pytest.raises(CommandError, match=r"already running in another process\. Try again"):
            run()
    finally:
        held.release()


def test_nothing_shown_yet(db, monkeypatch):
    Clock(monkeypatch)
    out, _ = run()
    assert out.strip() == "Nothing to roll up: no recommendation block has been shown yet."
