"""A subject's recent history as the strategies see it."""

from __future__ import annotations

from personalize.conf import personalize_settings
from personalize.models import Event
from personalize.strategies.base import History

DEFAULT_HISTORY_LIMIT = 500


def subject_history(subject_id: int, limit: int = DEFAULT_HISTORY_LIMIT) -> History:
    """The latest ``limit`` item events of a subject, oldest first, weighted per settings.

    Events whose type carries no preference (weight 0, such as impressions) are
    left out; explicit ratings go to ``History.ratings`` and count as weight 1.
    """
    weights = personalize_settings.event_weights
    preference_types = [name for name, w in weights.items() if w is None or w != 0]
    rows = list(
        Event.objects.filter(
            subject_id=subject_id, item__isnull=False, event_type__in=preference_types
        )
        .order_by("-timestamp", "-id")
        .values_list("item_id", "event_type", "value", "timestamp")[:limit]
    )
    rows.reverse()
    ratings = {
        item_id: float(value)
        for item_id, event_type, value, _ in rows
        if weights.get(event_type) is None and value is not None
    }
    return History(
        item_ids=[row[0] for row in rows],
        weights=[_weight(weights.get(row[1])) for row in rows],
        timestamps=[row[3].timestamp() for row in rows],
        ratings=ratings,
        subject_id=subject_id,
    )


def _weight(weight: float | None) -> float:
    # Explicit ratings (weight None) count as one interaction.
    return 1.0 if weight is None else float(weight)
