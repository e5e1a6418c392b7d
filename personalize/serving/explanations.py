"""Why an item is in a block: "Because you bought X", "Trending now", "Popular in Y".

Each stage of the pipeline gives the items it picked a :class:`Reason`; the
block turns reasons into translated text once its items are loaded (a reason
may name an item, whose title it then shows).

A strategy's :meth:`~personalize.strategies.Strategy.explain_many` names the
history item behind each pick; the reason then says what the subject did with
it (bought, added to the cart, rated, viewed), taken from the event types of
the subject's history. What a strategy's other picks say comes from its
declared ``generic_reason`` ("Recommended for you", "Trending now", "Popular
in <category>") and, for ``similar()``, its ``similar_reason`` ("Similar to
X", "Customers who bought X also bought this").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils.translation import gettext, gettext_noop

from personalize.models import Item
from personalize.serving.loader import ActiveModel
from personalize.strategies import History
from personalize.tracking.history import type_weight

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    """One explanation, untranslated until :meth:`text`.

    Attributes:
        message: the message id (marked with ``gettext_noop``); it may hold
            ``%(category)s`` or ``%(title)s``.
        category: the category the message names.
        item: the pk of the item whose title the message names.
        event_type: what the subject did with ``item`` (``purchase``,
            ``view``, ...), for a reason that names a history item.
    """

    message: str
    category: str = ""
    item: int | None = None
    event_type: str | None = None

    def text(self, items: dict[int, Item]) -> str:
        """The translated explanation; ``items`` holds (at least) the item it names."""
        if self.item is None:
            return gettext(self.message) % {"category": self.category}
        named = items.get(self.item)
        if named is None:  # the item left the catalog meanwhile
            return gettext(RECOMMENDED.message)
        return gettext(self.message) % {"title": named.title or named.external_id}


RECOMMENDED = Reason(gettext_noop("Recommended for you"))
FEATURED = Reason(gettext_noop("Featured"))
POPULAR_NOW = Reason(gettext_noop("Popular right now"))
TRENDING_NOW = Reason(gettext_noop("Trending now"))
MIGHT_ALSO_LIKE = Reason(gettext_noop("You might also like"))

#: "Because you <did> X" by the event type of the history item behind a pick.
#: Other types (a site's ``EXTRA_EVENT_TYPES``) get :data:`BECAUSE_OTHER`.
BECAUSE_MESSAGES: dict[str, str] = {
    "purchase": gettext_noop("Because you bought %(title)s"),
    "add_to_cart": gettext_noop("Because you added %(title)s to your cart"),
    "rating": gettext_noop("Because you rated %(title)s"),
    "like": gettext_noop("Because you liked %(title)s"),
    "view": gettext_noop("Because you viewed %(title)s"),
    "dwell": gettext_noop("Because you viewed %(title)s"),
    "click": gettext_noop("Because you viewed %(title)s"),
}
BECAUSE_OTHER = gettext_noop("Because of your interest in %(title)s")


def popular_in(category: str) -> Reason:
    """'Popular in <category>'."""
    return Reason(gettext_noop("Popular in %(category)s"), category=category)


def because(item: int, event_type: str | None = None) -> Reason:
    """'Because you bought <title>' (viewed, rated, ...), by what the subject did with ``item``."""
    message = BECAUSE_MESSAGES.get(event_type or "", BECAUSE_OTHER)
    return Reason(message, item=item, event_type=event_type)


def similar_to(item: int) -> Reason:
    """'Similar to <title of item>'."""
    return Reason(gettext_noop("Similar to %(title)s"), item=item)


def bought_with(item: int) -> Reason:
    """'Customers who bought <title of item> also bought this'."""
    return Reason(gettext_noop("Customers who bought %(title)s also bought this"), item=item)


def similar_reason(model: ActiveModel | None, item: int) -> Reason:
    """What a strategy's ``similar()`` picks for ``item`` say (its ``similar_reason``)."""
    if model is not None and getattr(model.strategy, "similar_reason", "") == "bought_together":
        return bought_with(item)
    return similar_to(item)


#: A stage's explainer: the reason for each item it picked (pks, in order), in one call.
Explain = Callable[[list[int]], list[Reason]]


def constant(reason: Reason) -> Explain:
    """An explainer giving every item of a stage the same reason."""
    return lambda pks: [reason] * len(pks)


def source_event_types(
    sources: Sequence[Any], history: History, event_types: Sequence[str] | None
) -> list[str | None]:
    """What the subject did with each of ``sources`` (history items): the strongest event.

    The event of the largest weight (``EVENT_WEIGHTS``, before the recency
    decay) wins: a purchase over a view of the same item; among equal
    weights, the latest. ``None`` for a source that is not
    in the history, or when the history's event types are unknown.
    """
    answers: list[str | None] = [None] * len(sources)
    if not event_types or len(event_types) != len(history) or not len(history):
        return answers
    wanted = [n for n, source in enumerate(sources) if source is not None]
    if not wanted:
        return answers
    try:
        items = np.asarray(history.item_ids, dtype=np.int64)
        asked = np.asarray([sources[n] for n in wanted], dtype=np.int64)
    except (TypeError, ValueError):  # ids that are not Item pks: nothing to match
        return answers
    rows = np.flatnonzero(np.isin(items, asked))
    if rows.size == 0:
        return answers
    # the event's own weight, before the recency decay: a purchase outranks a later
    # view, and a view never outranks a rating only because views decay faster
    weights = np.fromiter((type_weight(kind) for kind in event_types), dtype=np.float64,
                          count=len(event_types))
    # by item, then weight, then position: each item's last row is its strongest, latest event
    order = rows[np.lexsort((rows, weights[rows], items[rows]))]
    last = np.append(items[order][1:] != items[order][:-1], True)
    strongest = {int(items[row]): event_types[row] for row in order[last].tolist()}
    for n, source in zip(wanted, asked.tolist(), strict=True):
        answers[n] = strongest.get(source)
    return answers


def generic_explainer(
    model: ActiveModel, popular: Explain, default: Reason = RECOMMENDED
) -> Explain:
    """What a strategy's picks without a named history item say (its ``generic_reason``).

    Args:
        model: the live model.
        popular: the "Popular in <category>" explainer, for popularity strategies.
        default: the reason for ``"recommended"`` (or a value serving does not know).
    """
    kind = getattr(model.strategy, "generic_reason", "recommended")
    if kind == "trending":
        return constant(TRENDING_NOW)
    if kind == "popular":
        return popular
    return constant(default)


def strategy_explainer(
    model: ActiveModel, history: History, event_types: Sequence[str] | None = None,
    generic: Explain | None = None,
) -> Explain:
    """The strategy's reasons for a stage's picks: one ``explain_many`` call.

    Should it fail, each item is asked on its own with ``explain``, so one bad
    item costs only its own reason.

    Args:
        model: the live model.
        history: the subject's history, as the strategy saw it.
        event_types: the event type of each history entry (what the reason names).
        generic: the reasons of picks the strategy does not explain
            (default: "Recommended for you").
    """
    fallback = generic or constant(RECOMMENDED)

    def sources(pks: list[int]) -> list[Any]:
        if not len(history):  # nothing to name: no call needed
            return [None] * len(pks)
        try:
            found = list(model.strategy.explain_many(model.artifact, history, pks))
            if len(found) == len(pks):
                return found
            logger.debug("explain_many() gave %d answers for %d items", len(found), len(pks))
        except Exception:
            logger.debug("explain_many() failed for %s", pks, exc_info=True)
        return [one(pk) for pk in pks]

    def one(pk: int) -> Any:
        try:
            return model.strategy.explain(model.artifact, history, pk)
        except Exception:
            logger.debug("explain() failed for %s", pk, exc_info=True)
            return None

    def explain(pks: list[int]) -> list[Reason]:
        if not pks:
            return []
        named = [_as_pk(source) for source in sources(pks)]
        kinds = source_event_types(named, history, event_types)
        unexplained = [pk for pk, source in zip(pks, named, strict=True) if source is None]
        others = iter(fallback(unexplained) if unexplained else [])
        return [
            because(source, kind) if source is not None else next(others)
            for source, kind in zip(named, kinds, strict=True)
        ]

    return explain


def _as_pk(source: Any) -> int | None:
    """The history item ``source`` as an Item pk; ``None`` for ids that cannot be titled."""
    if source is None:
        return None
    try:
        return int(source)
    except (TypeError, ValueError):
        return None
