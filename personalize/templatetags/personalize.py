"""Template tags for page authors: ``{% load personalize %}``.

::

    {% recommended_for_you "home" limit=8 %}
    {% get_recommendations "home" limit=8 as recs %}
    {% similar_items product limit=6 %}
    {% similar_items product limit=6 placement="product-similar" strategy="embeddings" %}
    {% get_similar_items product limit=6 as recs %}
    {% personalize_tracker %}

Each tag is a thin caller of :mod:`personalize.serving.service`. A tag never
breaks a page: on any error it renders nothing (or gives an empty list) and
logs the exception. Each block a tag renders (or gives to the template) is an
exposure (:func:`personalize.outcomes.exposures.log_exposure`): the block's
markup carries its impression id as ``data-personalize-impression``, and a
list from ``get_recommendations`` / ``get_similar_items`` as ``recs.impression``.
A placement a tag names that does not exist yet is created with the default
settings on that first render
(:func:`~personalize.serving.placements.ensure_placement`), so it shows up in
the admin ready to configure.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django import template
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from personalize.outcomes.exposures import TAG, log_exposure
from personalize.serving.placements import ensure_placement, get_placement
from personalize.serving.service import (
    Recommendation,
    materialise,
    serve_block,
    serve_similar_block,
)

logger = logging.getLogger(__name__)
register = template.Library()

BLOCK_TEMPLATE = "personalize/recommended_for_you.html"
ITEM_TEMPLATE = "personalize/recommendation_item.html"
TRACKER_TEMPLATE = "personalize/tracker.html"


class Recommendations(list[Recommendation]):
    """The recommendations of one block, with its impression id (``recs.impression``).

    Put it on the block's markup, ``data-personalize-impression="{{ recs.impression }}"``,
    so that the tracker's clicks name the block they came from; ``None`` when
    the block was not logged as an exposure (no ``analytics`` consent).
    """

    def __init__(self, recommendations: Iterable[Recommendation] = (),
                 impression: uuid.UUID | None = None) -> None:
        super().__init__(recommendations)
        self.impression = impression


def block_strategy(recommendations: Sequence[Recommendation], preferred: str) -> str:
    """The strategy a block is attributed to: the placement's when it produced any item."""
    if any(r.strategy == preferred for r in recommendations):
        return preferred
    return recommendations[0].strategy if recommendations else preferred


def render_block(
    recommendations: Sequence[Recommendation],
    *,
    placement: str,
    heading: str,
    strategy: str,
    template_name: str | None = None,
    item_template: str | None = None,
    impression: uuid.UUID | None = None,
) -> SafeString:
    """Render a block of recommendations with the (overridable) block and item templates.

    ``impression`` is the block's impression id (``data-personalize-impression``),
    ``None`` for a block that was not logged (admin previews, no consent).
    """
    if not recommendations:
        return mark_safe("")
    html = get_template(template_name or BLOCK_TEMPLATE).render({
        "recommendations": recommendations,
        "placement": placement,
        "heading": heading,
        "strategy": strategy,
        "impression": impression,
        # resolved once here rather than by {% include %} for every item
        "item_template": get_template(item_template or ITEM_TEMPLATE),
    })
    return mark_safe(html)  # noqa: S308 - rendered by an autoescaping template


def _request(context: template.Context) -> Any:
    return context.get("request")


@register.simple_tag(takes_context=True)
def recommended_for_you(
    context: template.Context,
    placement: str = "home",
    limit: int | None = None,
    item: Any = None,
    heading: str | None = None,
    template: str | None = None,
    item_template: str | None = None,
) -> SafeString:
    """Render the "Recommended for You" block of a placement for the page's visitor.

    Needs ``django.template.context_processors.request`` to know the visitor;
    without a request in the context the block is the non-personalized one.

    Args:
        context: the template context.
        placement: the placement name.
        limit: how many items (default: the placement's limit).
        item: the page's item (an Item, a host catalog object or an external id).
        heading: overrides the placement's heading.
        template: overrides ``personalize/recommended_for_you.html``.
        item_template: overrides ``personalize/recommendation_item.html``.
    """
    try:
        ensure_placement(placement)
        recs = _recommendations(context, placement, limit, item)
        config = get_placement(placement)
        return render_block(
            recs, placement=placement,
            heading=config.heading if heading is None else heading,
            strategy=block_strategy(recs, recs.strategy or config.strategy),
            template_name=template, item_template=item_template, impression=recs.impression,
        )
    except Exception:
        logger.exception("recommended_for_you %r could not render", placement)
        return mark_safe("")


class _Block(Recommendations):
    """A block's recommendations and the strategy that produced it."""

    def __init__(self, recommendations: Iterable[Recommendation],
                 impression: uuid.UUID | None, strategy: str) -> None:
        super().__init__(recommendations, impression)
        self.strategy = strategy


def _recommendations(context: template.Context, placement: str, limit: int | None,
                     item: Any) -> _Block:
    """Serve the block, log its exposure."""
    served = serve_block(_request(context), placement, limit,
                         {"item": item} if item is not None else None)
    return _Block(materialise(served), log_exposure(served, TAG), served.strategy)


@register.simple_tag(takes_context=True)
def get_recommendations(
    context: template.Context, placement: str = "home", limit: int | None = None,
    item: Any = None,
) -> Recommendations:
    """``{% get_recommendations "home" limit=8 as recs %}``: the list, for custom markup.

    Rendering it is an exposure: put ``recs.impression`` on the block's markup
    as ``data-personalize-impression``.
    """
    try:
        ensure_placement(placement)
        recs = _recommendations(context, placement, limit, item)
        return Recommendations(recs, recs.impression)
    except Exception:
        logger.exception("get_recommendations %r failed", placement)
        return Recommendations()


def _similar(context: template.Context, product: Any, limit: int, placement: str | None,
             strategy: str | None) -> _Block:
    """Serve the similar items, log their exposure."""
    if placement:
        ensure_placement(placement)
    served = serve_similar_block(product, limit, strategy=strategy, placement=placement,
                                 audience=_request(context))
    return _Block(materialise(served), log_exposure(served, TAG), served.strategy)


@register.simple_tag(takes_context=True, name="similar_items")
def similar_items_tag(
    context: template.Context,
    product: Any,
    limit: int = 6,
    placement: str | None = None,
    strategy: str | None = None,
    heading: str | None = None,
    template: str | None = None,
    item_template: str | None = None,
) -> SafeString:
    """Render items similar to ``product`` (the same for every visitor).

    Args:
        context: the template context (its request is the visitor, for the exposure).
        product: an Item, a host catalog object or an external id.
        limit: how many items.
        placement: a placement whose heading, filters, diversity and strategy apply.
        strategy: the strategy whose ``similar()`` ranks them (default: the
            placement's, else ``SIMILAR_STRATEGY``).
        heading: overrides the heading (default: the placement's, else "Similar items").
        template: overrides ``personalize/recommended_for_you.html``.
        item_template: overrides ``personalize/recommendation_item.html``.
    """
    try:
        recs = _similar(context, product, limit, placement, strategy)
        if heading is None:
            config = get_placement(placement) if placement else None
            heading = (config.heading if config is not None and config.configured
                       else gettext("Similar items"))
        used = strategy or (recs[0].strategy if recs else "")
        return render_block(
            recs, placement=placement or "similar", heading=heading,
            strategy=block_strategy(recs, used), template_name=template,
            item_template=item_template, impression=recs.impression,
        )
    except Exception:
        logger.exception("similar_items could not render for %r", product)
        return mark_safe("")


@register.simple_tag(takes_context=True)
def get_similar_items(
    context: template.Context, product: Any, limit: int = 6, placement: str | None = None,
    strategy: str | None = None,
) -> Recommendations:
    """``{% get_similar_items product limit=6 as recs %}``: the list, for custom markup.

    Rendering it is an exposure: ``recs.impression`` as in ``get_recommendations``.
    """
    try:
        recs = _similar(context, product, limit, placement, strategy)
        return Recommendations(recs, recs.impression)
    except Exception:
        logger.exception("get_similar_items failed for %r", product)
        return Recommendations()


@register.simple_tag
def personalize_tracker() -> SafeString:
    """The ``<script>`` tag of the JavaScript tracker (impressions and clicks)."""
    try:
        from django.urls import NoReverseMatch, reverse

        try:
            endpoint = reverse("personalize:events")
        except NoReverseMatch:
            endpoint = ""
        return mark_safe(  # noqa: S308 - rendered by an autoescaping template
            get_template(TRACKER_TEMPLATE).render({"endpoint": endpoint})
        )
    except Exception:
        logger.exception("personalize_tracker could not render")
        return mark_safe("")
