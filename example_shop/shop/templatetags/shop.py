"""Small template helpers for the shop's layout: ``{% load shop %}``."""

from __future__ import annotations

from django import template
from django.http import HttpRequest

from example_shop.shop.cart import Cart

register = template.Library()


@register.simple_tag(takes_context=True)
def cart_count(context: template.Context) -> int:
    """Units in the visitor's cart (0 without a session)."""
    request: HttpRequest | None = context.get("request")
    if request is None or not hasattr(request, "session"):
        return 0
    return len(Cart(request))


@register.simple_tag(takes_context=True)
def page_url(context: template.Context, page: int) -> str:
    """The current query string with ``page`` replaced (keeps sort and search)."""
    request: HttpRequest | None = context.get("request")
    query = request.GET.copy() if request is not None else None
    if query is None:
        return f"?page={page}"
    query["page"] = str(page)
    return "?" + query.urlencode()
