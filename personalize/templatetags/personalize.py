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
logs the exception. A placement a tag names that does not exist yet is
created with the default settings on that first render
(:func:`~personalize.serving.placements.ensure_placement`), so it shows up in
the admin ready to configure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django import template
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from personalize.serving.placements import ensure_placement, get_placement
from personalize.serving.service import Recommendation, recommend, similar_items

logger = logging.getLogger(__name__)
register = template.Library()

BLOCK_TEMPLATE = "personalize/recommended_for_you.html"
ITEM_TEMPLATE = "personalize/recommendation_item.html"
TRACKER_TEMPLATE = "personalize/tracker.html"


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
) -> SafeString:
    """Render a block of recommendations with the (overridable) block and item templates."""
    if not recommendations:
        return mark_safe("")
    html = get_template(template_name or BLOCK_TEMPLATE).render({
        "recommendations": recommendations,
        "placement": placement,
        "heading": heading,
        "strategy": strategy,
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
        recs = recommend(_request(context), placement, limit=limit,
                         context={"item": item} if item is not None else None)
        config = get_placement(placement)
        return render_block(
            recs, placement=placement,
            heading=config.heading if heading is None else heading,
            strategy=block_strategy(recs, config.strategy),
            template_name=template, item_template=item_template,
        )
    except Exception:
        logger.exception("recommended_for_you %r could not render", placement)
        return mark_safe("")


@register.simple_tag(takes_context=True)
def get_recommendations(
    context: template.Context, placement: str = "home", limit: int | None = None,
    item: Any = None,
) -> list[Recommendation]:
    """``{% get_recommendations "home" limit=8 as recs %}``: the list, for custom markup."""
    try:
        ensure_placement(placement)
        return recommend(_request(context), placement, limit=limit,
                         context={"item": item} if item is not None else None)
    except Exception:
        logger.exception("get_recommendations %r failed", placement)
        return []


@register.simple_tag(name="similar_items")
def similar_items_tag(
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
        if placement:
            ensure_placement(placement)
        recs = similar_items(product, limit, strategy=strategy, placement=placement)
        if heading is None:
            config = get_placement(placement) if placement else None
            heading = (config.heading if config is not None and config.configured
                       else gettext("Similar items"))
        used = strategy or (recs[0].strategy if recs else "")
        return render_block(
            recs, placement=placement or "similar", heading=heading,
            strategy=block_strategy(recs, used), template_name=template,
            item_template=item_template,
        )
    except Exception:
        logger.exception("similar_items could not render for %r", product)
        return mark_safe("")


@register.simple_tag
def get_similar_items(
    product: Any, limit: int = 6, placement: str | None = None, strategy: str | None = None,
) -> list[Recommendation]:
    """``{% get_similar_items product limit=6 as recs %}``: the list, for custom markup."""
    try:
        if placement:
            ensure_placement(placement)
        return similar_items(product, limit, strategy=strategy, placement=placement)
    except Exception:
        logger.exception("get_similar_items failed for %r", product)
        return []


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
