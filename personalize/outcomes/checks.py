"""System checks for the outcomes settings (registered in ``personalize.checks``).

personalize.E034
    ``ROLLUP_SCHEDULE`` (unless ``None``) is not a dict of Celery crontab fields,
    or a field is invalid (the same check as the other schedules).
personalize.E060
    ``ATTRIBUTION_WINDOW_HOURS`` is not a number of hours above 0 and at most
    720 (30 days).
personalize.E061
    ``VIEW_THROUGH_HOURS`` is not ``None`` or a number of hours above 0 and at
    most 720.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error

from personalize.conf import personalize_settings
from personalize.training.checks import _schedule_errors

#: The longest window: every rollup re-reads twice this much history.
MAX_WINDOW_HOURS = 720


def _hours(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and 0 < value <= MAX_WINDOW_HOURS)


def outcome_checks() -> list[CheckMessage]:
    """Every outcomes-settings check (see the module docstring)."""
    s = personalize_settings
    errors: list[CheckMessage] = []
    if s.ROLLUP_SCHEDULE is not None:  # None: no scheduled rollup
        errors += _schedule_errors(s.ROLLUP_SCHEDULE, "ROLLUP_SCHEDULE",
                                   '{"minute": 10} (hourly), or None for no scheduled rollup')
    if not _hours(s.ATTRIBUTION_WINDOW_HOURS):
        errors.append(Error(
            f"PERSONALIZE['ATTRIBUTION_WINDOW_HOURS'] is {s.ATTRIBUTION_WINDOW_HOURS!r}.",
            hint=f"Use a number of hours above 0 and at most {MAX_WINDOW_HOURS}: how long "
                 "after a click an add-to-cart or purchase of the clicked item is credited "
                 "to the block (24 by default).",
            obj="PERSONALIZE['ATTRIBUTION_WINDOW_HOURS']", id="personalize.E060",
        ))
    view_through = s.VIEW_THROUGH_HOURS
    if view_through is not None and not _hours(view_through):
        errors.append(Error(
            f"PERSONALIZE['VIEW_THROUGH_HOURS'] is {view_through!r}.",
            hint=f"Use None (no view-through attribution, the default) or a number of hours "
                 f"above 0 and at most {MAX_WINDOW_HOURS}: how long after a block a purchase "
                 "of an item it showed is credited to it when no click claims the purchase.",
            obj="PERSONALIZE['VIEW_THROUGH_HOURS']", id="personalize.E061",
        ))
    return errors
