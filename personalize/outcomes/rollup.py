"""The rollups: daily counts per placement, strategy and variant, experiment outcomes, bandits.

:func:`run_rollup` is what the scheduled task and ``manage.py personalize_rollup``
call. One run

1. rewrites the :class:`~personalize.models.DailyRollup` rows of a range of
   days (in the site's ``TIME_ZONE``) from the exposures and events, a group
   of subjects at a time (bounded memory), in one short transaction at the
   end: running it twice gives the same rows;
2. recomputes the :class:`~personalize.models.SubjectOutcome` rows that may
   have changed (:mod:`personalize.outcomes.subjects`);
3. moves the weights of running bandits (:mod:`personalize.outcomes.allocation`);
4. records itself as a :class:`~personalize.models.RollupRun`.

Incremental: without a range it rewrites the days from where the last run
that caught up started, less :attr:`Rules.reach` (a block's counts can change
for that long: a click within the attribution window, then a conversion
within the window after the click), to today. The first run starts at the
first exposure. Rebuild: ``since`` (and ``until``) name the days to rewrite.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from personalize.backends.cache import CacheUnavailable
from personalize.models import DailyRollup, Exposure, RollupRun
from personalize.outcomes.allocation import update_allocations
from personalize.outcomes.attribution import attribute
from personalize.outcomes.daily import DailyCells
from personalize.outcomes.reader import (
    day_start,
    db_time,
    groups,
    local_day,
    read_activity,
    rules_from_settings,
)
from personalize.outcomes.subjects import update_outcomes
from personalize.training.locks import CacheLock, LockHeld

logger = logging.getLogger(__name__)

#: Exposures of the subjects read and attributed together (bounds a run's memory).
EXPOSURES_PER_GROUP = 50_000
#: Subjects read together at most (the length of one IN list).
SUBJECTS_PER_GROUP = 10_000
#: Days whose cells are built together: the events around a span (the
#: attribution reach on either side) are read once per span.
DAYS_PER_SPAN = 31
#: Runs kept in the history (the latest; older ones are pruned).
RUNS_KEPT = 500
#: Seconds the rollup lock outlives a worker that died mid-run.
LOCK_TTL = 3600

Progress = Callable[[str, int, int], None]


class RollupInProgress(LockHeld):
    """Another process is running the rollups."""

    def __init__(self) -> None:
        super().__init__("The rollups are already running in another process.")


@dataclass(frozen=True)
class RollupReport:
    """What a run did.

    Attributes:
        first_day, last_day: the days rewritten (``None``: nothing was ever shown).
        caught_up: everything since the previous caught-up run is rolled up.
        exposures: blocks counted.
        rows: :class:`DailyRollup` rows written.
        outcomes: :class:`SubjectOutcome` rows written.
        allocations: bandit :class:`AllocationSnapshot` rows stored.
        seconds: how long it took.
    """

    first_day: date | None
    last_day: date | None
    caught_up: bool
    exposures: int = 0
    rows: int = 0
    outcomes: int = 0
    allocations: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the task's result)."""
        data = asdict(self)
        for key in ("first_day", "last_day"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    def __str__(self) -> str:
        if self.first_day is None:
            return "Nothing to roll up: no recommendation block has been shown yet."
        days = (f"{self.first_day}" if self.first_day == self.last_day
                else f"{self.first_day} to {self.last_day}")
        return (f"Rolled up {self.exposures:,} exposure(s) of {days} into {self.rows:,} daily "
                f"row(s); {self.outcomes:,} experiment outcome(s), {self.allocations} bandit "
                f"allocation(s) updated in {self.seconds:.1f} s.")


def _spans(first: date, last: date, size: int) -> list[tuple[date, date]]:
    spans = []
    while first <= last:
        end = min(last, first + timedelta(days=size - 1))
        spans.append((first, end))
        first = end + timedelta(days=1)
    return spans


def rollup_days(first: date, last: date, *,
                progress: Progress | None = None) -> tuple[list[DailyRollup], int]:
    """The daily rows of the days ``first`` to ``last``, computed, not saved.

    Returns:
        ``(rows, exposures counted)``.
    """
    rules = rules_from_settings()
    reach = timedelta(microseconds=rules.reach)
    total = 0
    if progress is not None:
        total = Exposure.objects.filter(
            created_at__gte=db_time(day_start(first)),
            created_at__lt=db_time(day_start(last + timedelta(days=1))),
        ).count()
    spans = [DailyCells(a, b) for a, b in _spans(first, last, DAYS_PER_SPAN)]
    done = 0
    for cells in spans:
        counts = (
            Exposure.objects.filter(created_at__gte=db_time(cells.start),
                                    created_at__lt=db_time(cells.end))
            .values("subject_id").annotate(n=Count("id")).order_by("subject_id")
            .values_list("subject_id", "n")
        )
        for group in groups(counts, EXPOSURES_PER_GROUP, SUBJECTS_PER_GROUP):
            activity = read_activity(group, cells.start - reach, cells.end + reach)
            attribution = attribute(activity.exposures, activity.clicks,
                                    activity.conversions, rules)
            done += cells.add(activity, attribution)
            if progress is not None:
                progress("daily rollups", done, total)
    rows = [row for cells in spans for row in cells.rows()]
    return rows, done


def write_days(first: date, last: date, rows: list[DailyRollup]) -> int:
    """Replace the rows of the days ``first`` to ``last`` with ``rows`` (one transaction)."""
    with transaction.atomic():
        DailyRollup.objects.filter(day__gte=first, day__lte=last).delete()
        DailyRollup.objects.bulk_create(rows, batch_size=500)
    return len(rows)


@dataclass(frozen=True)
class Plan:
    """The days a run rewrites, and whether it catches up."""

    first_day: date
    last_day: date
    caught_up: bool


def plan_run(now: datetime, since: date | None = None, until: date | None = None) -> Plan | None:
    """Which days a run rewrites, and whether it catches up (``None``: nothing to do).

    Raises:
        ValueError: ``until`` before ``since``, or ``until`` without ``since``.
    """
    if until is not None and since is None:
        raise ValueError("A rollup that ends on a day needs its first day too (since).")
    if since is not None and until is not None and until < since:
        raise ValueError(f"The last day {until} is before the first day {since}.")
    reach = timedelta(microseconds=rules_from_settings().reach)
    today = local_day(now)
    mark = RollupRun.objects.filter(caught_up=True).aggregate(m=Max("started_at"))["m"]
    first_shown = Exposure.objects.aggregate(m=Min("created_at"))["m"]
    # where a run must begin to catch up
    needed = first_shown if mark is None or first_shown is None else max(first_shown,
                                                                         mark - reach)
    if since is None:
        if needed is None:
            return None
        return Plan(min(local_day(needed), today), today, caught_up=True)
    last = until or today
    caught_up = last >= today and (needed is None or db_time(day_start(since)) <= needed)
    return Plan(since, last, caught_up)


def _lock() -> CacheLock | None:
    """The rollup lock, taken; ``None`` when the cache is unreachable (run without it).

    Two runs at once would only repeat work: each writes its days in one
    transaction, and the later write fails on the unique cells rather than
    doubling them.
    """
    lock = CacheLock("rollup", LOCK_TTL)
    try:
        if not lock.acquire():
            raise RollupInProgress()
    except CacheUnavailable:
        logger.warning("The cache is unreachable; rolling up without the rollup lock")
        return None
    return lock


def _release(lock: CacheLock | None) -> None:
    if lock is None:
        return
    try:
        lock.release()
    except Exception:  # it expires by itself
        logger.warning("Cannot release the rollup lock", exc_info=True)


def run_rollup(since: date | None = None, until: date | None = None, *,
               progress: Progress | None = None) -> RollupReport:
    """Roll up exposures and events: daily rows, experiment outcomes, bandit weights.

    Args:
        since: the first day to rewrite; ``None`` for the incremental run
            (from where the last caught-up run left off, less the attribution reach).
        until: the last day to rewrite (default: today).
        progress: called with ``(step, done, total)`` as the run goes.

    Raises:
        RollupInProgress: another process is running the rollups.
        ValueError: an impossible range.
    """
    started = timezone.now()
    timer = clock.perf_counter()
    lock = _lock()
    try:
        plan = plan_run(started, since, until)
        if plan is None:
            return RollupReport(None, None, caught_up=True)
        rows, exposures = rollup_days(plan.first_day, plan.last_day, progress=progress)
        written = write_days(plan.first_day, plan.last_day, rows)
        outcomes = update_outcomes(day_start(plan.first_day), progress=progress)
        allocations = update_allocations()
        report = RollupReport(
            plan.first_day, plan.last_day, plan.caught_up, exposures=exposures, rows=written,
            outcomes=outcomes, allocations=allocations,
            seconds=clock.perf_counter() - timer,
        )
        RollupRun.objects.create(
            started_at=started, first_day=plan.first_day, last_day=plan.last_day,
            caught_up=plan.caught_up, exposures=exposures, rows=written, outcomes=outcomes,
        )
        stale = RollupRun.objects.order_by("-started_at", "-pk").values_list("pk", flat=True)
        RollupRun.objects.filter(pk__in=list(stale[RUNS_KEPT:])).delete()
    finally:
        _release(lock)
    logger.info("%s", report)
    return report
