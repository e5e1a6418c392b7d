"""A subject's recent history as the strategies see it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import router

from personalize.backends.database import store_for
from personalize.conf import personalize_settings
from personalize.models import Event
from personalize.models.events import HISTORY_LIMIT
from personalize.strategies.history import History

DEFAULT_HISTORY_LIMIT = HISTORY_LIMIT


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


def subject_history(subject_id: int, limit: int = DEFAULT_HISTORY_LIMIT) -> History:
    """The latest ``limit`` item events of a subject, oldest first, weighted per settings.

    Events whose type carries no preference (weight 0, such as impressions) are
    left out; explicit ratings go to ``History.ratings`` and count as weight 1.
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
    history = History(
        item_ids=[row[0] for row in rows],
        weights=[_weight(weights[row[1]]) for row in rows],
        timestamps=[row[3] for row in rows],
        ratings=ratings,
        subject_id=subject_id,
    )
    return SubjectEvents(history, [row[1] for row in rows], types, complete=read_all)


def _weight(weight: float | None) -> float:
    # Explicit ratings (weight None) count as one interaction.
    return 1.0 if weight is None else float(weight)
