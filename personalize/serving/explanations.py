"""Why an item is in a block: "Because you viewed X", "Popular in Y", "Featured".

Each stage of the pipeline gives the items it picked a :class:`Reason`; the
block turns reasons into translated text once its items are loaded (a reason
may name an item, whose title it then shows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext, gettext_noop

from personalize.models import Item
from personalize.serving.loader import ActiveModel
from personalize.strategies import History

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    """One explanation, untranslated until :meth:`text`.

    Attributes:
        message: the message id (marked with ``gettext_noop``); it may hold
            ``%(category)s`` or ``%(title)s``.
        category: the category the message names.
        item: the pk of the item whose title the message names.
    """

    message: str
    category: str = ""
    item: int | None = None

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
MIGHT_ALSO_LIKE = Reason(gettext_noop("You might also like"))


def popular_in(category: str) -> Reason:
    """'Popular in <category>'."""
    return Reason(gettext_noop("Popular in %(category)s"), category=category)


def because(item: int) -> Reason:
    """'Because you viewed <title of item>'."""
    return Reason(gettext_noop("Because you viewed %(title)s"), item=item)


def similar_to(item: int) -> Reason:
    """'Similar to <title of item>'."""
    return Reason(gettext_noop("Similar to %(title)s"), item=item)


#: A stage's explainer: the reason for each item it picked (pks, in order), in one call.
Explain = Callable[[list[int]], list[Reason]]


def constant(reason: Reason) -> Explain:
    """An explainer giving every item of a stage the same reason."""
    return lambda pks: [reason] * len(pks)


def strategy_explainer(model: ActiveModel, history: History) -> Explain:
    """The strategy's reasons for a stage's picks: one ``explain_many`` call.

    Should it fail, each item is asked on its own with ``explain``, so one bad
    item costs only its own reason ("Recommended for you").
    """
    def sources(pks: list[int]) -> list[Any]:
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
        return [_from_source(source) for source in sources(pks)] if pks else []

    return explain


def _from_source(source: Any) -> Reason:
    """The reason naming the history item ``source``, else the generic one."""
    if source is None:
        return RECOMMENDED
    try:
        return because(int(source))
    except (TypeError, ValueError):  # ids that are not Item pks cannot be titled
        return RECOMMENDED
