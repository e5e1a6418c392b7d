"""System checks personalize.E060-E061 and E034 for ROLLUP_SCHEDULE (outcomes settings)."""

from __future__ import annotations

import pytest
from django.core.checks import Error

from personalize.checks import check_outcomes


def _with(settings, **overrides):
    settings.PERSONALIZE = {**settings.PERSONALIZE, **overrides}


def test_default_outcome_settings_pass():
    assert check_outcomes() == []


@pytest.mark.parametrize("value", [0, -1, 721, "24", True, None])
def test_e060_attribution_window(settings, value):
    _with(settings, ATTRIBUTION_WINDOW_HOURS=value)
    assert check_outcomes() == [Error(
        f"PERSONALIZE['ATTRIBUTION_WINDOW_HOURS'] is {value!r}.",
        hint="Use a number of hours above 0 and at most 720: how long after a click an "
             "add-to-cart or purchase of the clicked item is credited to the block "
             "(24 by default).",
        obj="PERSONALIZE['ATTRIBUTION_WINDOW_HOURS']", id="personalize.E060",
    )]


@pytest.mark.parametrize("value", [0, 1000, "12", False])
def test_e061_view_through_window(settings, value):
    _with(settings, VIEW_THROUGH_HOURS=value)
    assert check_outcomes() == [Error(
        f"PERSONALIZE['VIEW_THROUGH_HOURS'] is {value!r}.",
        hint="Use None (no view-through attribution, the default) or a number of hours above "
             "0 and at most 720: how long after a block a purchase of an item it showed is "
             "credited to it when no click claims the purchase.",
        obj="PERSONALIZE['VIEW_THROUGH_HOURS']", id="personalize.E061",
    )]


def test_valid_windows_pass(settings):
    _with(settings, ATTRIBUTION_WINDOW_HOURS=0.5, VIEW_THROUGH_HOURS=720, ROLLUP_SCHEDULE=None)
    assert check_outcomes() == []


def test_e034_rollup_schedule(settings):
    _with(settings, ROLLUP_SCHEDULE="*/15 * * * *")
    assert check_outcomes() == [Error(
        "PERSONALIZE['ROLLUP_SCHEDULE'] is '*/15 * * * *', not a dict.",
        hint='Use Celery crontab fields, for example {"minute": 10} (hourly), or None for no '
             "scheduled rollup (keys: minute, hour, day_of_week, day_of_month, month_of_year).",
        obj="PERSONALIZE['ROLLUP_SCHEDULE']", id="personalize.E034",
    )]
    _with(settings, ROLLUP_SCHEDULE={"minute": 75})
    [error] = check_outcomes()
    assert error.id == "personalize.E034"
    assert error.msg.startswith("PERSONALIZE['ROLLUP_SCHEDULE'] is not a valid crontab:")


def test_quiet_when_the_settings_cannot_be_read(settings):
    settings.PERSONALIZE = {"NOT_A_SETTING": 1, "ATTRIBUTION_WINDOW_HOURS": -1}
    assert check_outcomes() == []
