"""A subject's recent history as the strategies see it.

Serving weighs each event by its type (``EVENT_TYPES``) and by its age: with
``HISTORY_HALF_LIFE_HOURS`` an event's weight halves every half-life of its
type, so what a shopper does in this session outweighs a long purchase history
(:func:`recency_factors`). It is applied here, once, for every strategy.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import router

from personalize.backends.database import store_for
from personalize.conf import personalize_settings
from personalize.models import Event
from personalize.models.events import HISTORY_LIMIT
from personalize.strategies.history import History

DEFAULT_HISTORY_LIMIT = HISTORY_LIMIT
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class SubjectEvents:
    """A subject's history, with the event type of each entry and what the query covered.

    Attributes:
        history: what the strategies see.
        event_types: the event type of each history entry, in the same order.
        types: the event types the query read (those carrying a preference).
        complete: whether the query returned every item event of ``types``
            (fewer rows than its limit), so that the history stands for them all.
    """

    history: History
    event_types: list[str]
    types: tuple[str, ...]
    complete: bool

    def items_of(self, event_types: Sequence[str]) -> list[Any] | None:
        """The distinct items of the subject's events of ``event_types``, first seen first.

        Returns:
            ``None`` when the history cannot tell: a type it did not read, or
            events beyond its limit.
        """
        wanted = set(event_types)
        if not self.complete or not wanted <= set(self.types):
            return None
        pairs = zip(self.history.item_ids, self.event_types, strict=True)
        return list(dict.fromkeys(item for item, kind in pairs if kind in wanted))


def recency_factors(
    event_types: Sequence[str], timestamps: Sequence[float], now: float,
    half_lives: Mapping[str, float | None],
) -> np.ndarray:
    """The recency factor of each history entry: ``2 ** -(age / half-life of its type)``.

    Ages are counted in hours up to ``now`` (an entry from the future counts as
    new); a type without a half-life (missing or ``None``) is not decayed.
    The factors are divided by the largest one, so the least decayed entry keeps
    its full weight: only the proportions between entries change (the
    strategies score linearly in the weights) and a subject back after a long
    absence does not end up with weights that underflow to zero.

    Args:
        event_types: the event type of each entry.
        timestamps: POSIX seconds of each entry.
        now: POSIX seconds of the moment the history is read.
        half_lives: event type -> half-life in hours (``None``: no decay).

    Returns:
        A float64 array of factors in ``(0, 1]``, one per entry.
    """
    n = len(event_types)
    if not n or not half_lives:
        return np.ones(n)
    per_type = {kind: float(half_lives.get(kind) or np.inf) for kind in set(event_types)}
    life = np.fromiter((per_type[kind] for kind in event_types), dtype=np.float64, count=n)
    age = np.maximum(now - np.asarray(timestamps, dtype=np.float64), 0.0) / SECONDS_PER_HOUR
    exponent = age / life  # an infinite half-life gives 0: no decay
    return np.exp2(exponent.min() - exponent)


def subject_history(subject_id: int, limit: int = DEFAULT_HISTORY_LIMIT) -> History:
    """The latest ``limit`` item events of a subject, oldest first, weighted per settings.

    Events whose type carries no preference (weight 0, such as impressions) are
    left out; explicit ratings go to ``History.ratings`` and count as weight 1.
    Each weight is multiplied by the event's recency factor
    (``HISTORY_HALF_LIFE_HOURS``, :func:`recency_factors`).
    """
    return subject_events(subject_id, limit).history


def subject_events(subject_id: int, limit: int = DEFAULT_HISTORY_LIMIT) -> SubjectEvents:
    """:func:`subject_history`, with each entry's event type (serving reads both).

    One indexed query (:meth:`personalize.backends.database.Store.latest_events`).
    """
    weights = personalize_settings.event_weights
    types = tuple(name for name, weight in weights.items() if weight is None or weight != 0)
    rows = store_for(router.db_for_read(Event)).latest_events(subject_id, types, limit)
    # fewer rows than the limit: every item event of the types was read
    read_all = len(rows) < limit
    rows.reverse()
    ratings = {
        item_id: float(value)
        for item_id, event_type, value, _ in rows
        if weights.get(event_type) is None and value is not None
    }
    kinds = [row[1] for row in rows]
    timestamps = [row[3] for row in rows]
    base = np.fromiter((_weight(weights[kind]) for kind in kinds), dtype=np.float64,
                       count=len(kinds))
    decay = recency_factors(kinds, timestamps, time.time(),
                            personalize_settings.HISTORY_HALF_LIFE_HOURS or {})
    history = History(
        item_ids=[row[0] for row in rows],
        weights=(base * decay).tolist(),
        recency=decay.tolist(),
        timestamps=timestamps,
        ratings=ratings,
        subject_id=subject_id,
    )
    return SubjectEvents(history, kinds, types, complete=read_all)


def _weight(weight: float | None) -> float:
    # Explicit ratings (weight None) count as one interaction.
    return 1.0 if weight is None else float(weight)


def type_weight(event_type: str) -> float:
    """The weight an event of ``event_type`` has in a history before its recency decay."""
    return _weight(personalize_settings.event_weights.get(event_type))
