"""Reading exposures and the events attribution needs, a group of subjects at a time.

Attribution is per subject (a click, a block and a purchase only meet when
they are the same subject's), so reading the activity of a few thousand
subjects at a time and attributing it is exact, and memory stays bounded by
the group, never by the size of the tables. Everything goes through the ORM;
only three event types are read (``click``, ``add_to_cart``, ``purchase``),
and of a click's ``context`` only its ``impression`` and ``position``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from typing import Any

import numpy as np
from django.conf import settings
from django.utils import timezone

from personalize.conf import personalize_settings
from personalize.models import Event, Exposure
from personalize.outcomes.attribution import (
    ADD_TO_CART,
    PURCHASE,
    Clicks,
    Conversions,
    Exposures,
    Rules,
)

CLICK = "click"
#: Event type -> ``Conversions.kinds`` value.
CONVERSION_TYPES = {"add_to_cart": ADD_TO_CART, "purchase": PURCHASE}

#: Rows fetched from the database per round trip.
FETCH_SIZE = 5000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def rules_from_settings() -> Rules:
    """The attribution windows of ``ATTRIBUTION_WINDOW_HOURS`` / ``VIEW_THROUGH_HOURS``."""
    s = personalize_settings
    return Rules.from_hours(s.ATTRIBUTION_WINDOW_HOURS, s.VIEW_THROUGH_HOURS,
                            s.TIMESTAMP_SKEW_SECONDS)


def _aware(moment: datetime) -> datetime:
    # sites with USE_TZ = False store local wall-clock times
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def micros(moment: datetime) -> int:
    """Microseconds since the epoch (naive times are read in the site's time zone)."""
    return (_aware(moment) - _EPOCH) // _MICRO


def day_start(day: date) -> datetime:
    """The first instant of ``day`` in the site's ``TIME_ZONE``."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def local_day(moment: datetime) -> date:
    """The date of ``moment`` in the site's ``TIME_ZONE``."""
    return timezone.localtime(_aware(moment), timezone.get_default_timezone()).date()


def db_time(moment: datetime) -> datetime:
    """``moment`` as a query compares it: naive local time where the site stores naive times."""
    if settings.USE_TZ:
        return _aware(moment)
    return timezone.make_naive(moment) if timezone.is_aware(moment) else moment


def groups(counts: Iterable[tuple[int, int]], budget: int, most: int) -> Iterator[list[int]]:
    """Subjects cut into groups of about ``budget`` exposures and at most ``most`` subjects.

    Args:
        counts: ``(subject pk, exposures)`` pairs, in the order the groups take them.
        budget: exposures per group: what bounds the memory of one read (a
            subject with more is a group of its own).
        most: subjects per group (the length of one ``IN`` list).
    """
    group: list[int] = []
    held = 0
    for subject, n in counts:
        if group and (held + n > budget or len(group) >= most):
            yield group
            group, held = [], 0
        group.append(subject)
        held += n
    if group:
        yield group


@dataclass(frozen=True)
class Activity:
    """A group of subjects' blocks, clicks and conversions in a time span.

    Attributes:
        exposures, clicks, conversions: the attribution inputs.
        placements, strategies: per exposure, its placement and strategy (``object`` arrays).
        experiments, variants: per exposure, the experiment and variant pks (``-1``: none).
    """

    exposures: Exposures
    clicks: Clicks
    conversions: Conversions
    placements: np.ndarray
    strategies: np.ndarray
    experiments: np.ndarray
    variants: np.ndarray


def _block_items(blocks: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``indptr`` and flat item pks of the blocks' ``items`` JSON."""
    clean = [block if isinstance(block, list) else [] for block in blocks]
    lengths = np.fromiter(map(len, clean), dtype=np.int64, count=len(clean))
    try:
        flat = np.fromiter(chain.from_iterable(clean), dtype=np.int64, count=int(lengths.sum()))
    except (TypeError, ValueError):  # a hand-edited row: keep what is an item pk
        clean = [[x for x in block if isinstance(x, int) and not isinstance(x, bool)]
                 for block in clean]
        lengths = np.fromiter(map(len, clean), dtype=np.int64, count=len(clean))
        flat = np.fromiter(chain.from_iterable(clean), dtype=np.int64, count=int(lengths.sum()))
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), flat


def read_exposures(subject_ids: Sequence[int], start: datetime,
                   end: datetime | None) -> tuple[Exposures, dict[str, np.ndarray]]:
    """The subjects' exposures shown in ``[start, end]`` (``end=None``: up to now)."""
    query = Exposure.objects.filter(subject_id__in=subject_ids, created_at__gte=db_time(start))
    if end is not None:
        query = query.filter(created_at__lte=db_time(end))
    rows = query.order_by("created_at", "id").values_list(
        "id", "subject_id", "created_at", "items", "placement", "strategy", "experiment_id",
        "variant_id",
    ).iterator(chunk_size=FETCH_SIZE)
    ids, subjects, times, blocks, placements, strategies, experiments, variants = (
        [] for _ in range(8))
    for pk, subject, shown, items, placement, strategy, experiment, variant in rows:
        ids.append(pk.bytes)
        subjects.append(subject)
        times.append(micros(shown))
        blocks.append(items)
        placements.append(placement)
        strategies.append(strategy)
        experiments.append(-1 if experiment is None else experiment)
        variants.append(-1 if variant is None else variant)
    indptr, flat = _block_items(blocks)
    exposures = Exposures.build(ids, subjects, times, indptr=indptr, flat=flat)
    return exposures, {
        "placements": np.array(placements, dtype=object),
        "strategies": np.array(strategies, dtype=object),
        "experiments": np.array(experiments, dtype=np.int64),
        "variants": np.array(variants, dtype=np.int64),
    }


def _impression(value: Any) -> bytes:
    if not value:
        return b""
    try:
        return uuid.UUID(str(value)).bytes
    except (ValueError, TypeError, AttributeError):
        return b""


def _position(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _value(value: Any) -> float:
    return float(value) if value is not None else 0.0


def read_events(subject_ids: Sequence[int], start: datetime,
                end: datetime | None) -> tuple[Clicks, Conversions]:
    """The subjects' clicks and conversions in ``[start, end]``, in the order they were stored."""
    query = Event.objects.filter(
        subject_id__in=subject_ids, timestamp__gte=db_time(start),
        event_type__in=[CLICK, *CONVERSION_TYPES],
    )
    if end is not None:
        query = query.filter(timestamp__lte=db_time(end))
    rows = query.order_by("id").values_list(
        "event_type", "subject_id", "item_id", "timestamp", "value", "context__impression",
        "context__position",
    ).iterator(chunk_size=FETCH_SIZE)
    clicks: list[tuple[int, int, int, bytes, int]] = []
    conversions: list[tuple[int, int, int, int, float]] = []
    for event_type, subject, item, at, value, impression, position in rows:
        if event_type == CLICK:
            clicks.append((subject, -1 if item is None else item, micros(at),
                           _impression(impression), _position(position)))
        elif item is not None:  # a conversion names what was bought
            conversions.append((subject, item, micros(at), CONVERSION_TYPES[event_type],
                                _value(value)))
    return _clicks(clicks), _conversions(conversions)


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[Iterable[Any]]:
    return list(zip(*rows, strict=True)) if rows else [[] for _ in range(width)]


def _clicks(rows: list[tuple[int, int, int, bytes, int]]) -> Clicks:
    subjects, items, times, impressions, positions = _columns(rows, 5)
    return Clicks.build(list(subjects), list(items), list(times),
                        np.array(list(impressions), dtype="S16"), list(positions))


def _conversions(rows: list[tuple[int, int, int, int, float]]) -> Conversions:
    subjects, items, times, kinds, values = _columns(rows, 5)
    return Conversions.build(list(subjects), list(items), list(times), list(kinds),
                             list(values))


def read_activity(subject_ids: Sequence[int], start: datetime,
                  end: datetime | None) -> Activity:
    """Everything attribution needs about ``subject_ids`` between ``start`` and ``end``.

    Args:
        subject_ids: the group of subjects (a few thousand at most per call).
        start: the span's first instant. A rollup of the blocks shown in
            ``[a, b)`` reads ``[a - reach, b + reach]`` (:attr:`Rules.reach`)
            so that every click and block competing for their conversions is known.
        end: the span's last instant, ``None`` for up to now.
    """
    exposures, meta = read_exposures(subject_ids, start, end)
    clicks, conversions = read_events(subject_ids, start, end)
    return Activity(exposures, clicks, conversions, **meta)
