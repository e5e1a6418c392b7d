"""What the shop's views do, in one place: catalog queries, cart changes, checkout.

Every step a shopper takes is also reported to django-personalize with
``personalize.track``: a product page view, an add to cart, a purchase. A
failure to record an event is logged and never costs the shop a sale.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

import personalize
from example_shop.shop.cart import Cart
from example_shop.shop.models import Category, Order, OrderLine, Product

logger = logging.getLogger(__name__)

BEST_SELLERS_CACHE_KEY = "shop:best-sellers:v1"
BEST_SELLERS_TTL = 600


class EmptyCart(Exception):
    """Checkout was asked for with nothing in the cart."""


def record(request: HttpRequest, event_type: str, product: Product | None = None,
           **context: Any) -> bool:
    """Track one shopper action; whether an event was stored (consent may say no)."""
    try:
        return personalize.track(request, event_type, item=product, **context) is not None
    except Exception:
        logger.exception("Could not record %s event for product %s", event_type,
                         getattr(product, "asin", None))
        return False


def categories_with_counts() -> QuerySet[Category]:
    return Category.objects.annotate(n_products=Count("products")).filter(n_products__gt=0)


def best_sellers(limit: int = 8) -> list[Product]:
    """The most ordered products in stock (cached: the count scans every order line).

    The cache is an accelerator: when it cannot be reached the products are
    counted in the database, and nothing is written back.
    """
    try:
        ids = cache.get(BEST_SELLERS_CACHE_KEY)
        reachable = True
    except Exception:
        logger.warning("Cache unreachable; counting best sellers in the database", exc_info=True)
        ids, reachable = None, False
    if ids is None:
        ids = list(
            Product.objects.filter(in_stock=True)
            .annotate(n_orders=Count("order_lines"))
            .order_by("-n_orders", "name")
            .values_list("pk", flat=True)[:24]
        )
        if reachable:
            try:
                cache.set(BEST_SELLERS_CACHE_KEY, ids, BEST_SELLERS_TTL)
            except Exception:
                logger.warning("Cannot cache the best sellers", exc_info=True)
    products = Product.objects.select_related("category").in_bulk(ids[:limit])
    return [products[pk] for pk in ids[:limit] if pk in products]


def search_products(query: str) -> QuerySet[Product]:
    """Products whose name, brand or description contain every word of ``query``."""
    products = Product.objects.select_related("category")
    for word in query.split()[:8]:
        products = products.filter(
            Q(name__icontains=word) | Q(brand__icontains=word) | Q(description__icontains=word)
        )
    return products.order_by("name")


#: Badge colours (background, letter), chosen per product by a stable hash of its ASIN.
BADGE_COLOURS = (
    ("#e0f2f1", "#00695c"), ("#e8eaf6", "#283593"), ("#fff3e0", "#e65100"),
    ("#fce4ec", "#ad1457"), ("#f1f8e9", "#33691e"), ("#ede7f6", "#4527a0"),
)


def product_badge(product: Product) -> dict[str, str]:
    """What the product's picture shows: its brand's (or name's) initial, in stable colours."""
    background, colour = BADGE_COLOURS[zlib.crc32(product.asin.encode()) % len(BADGE_COLOURS)]
    initial = (product.brand or product.name or "?")[:1].upper()
    return {"initial": initial, "background": background, "colour": colour,
            "label": product.name}


def view_product(request: HttpRequest, product: Product) -> None:
    record(request, "view", product)


def add_to_cart(request: HttpRequest, product: Product, quantity: int = 1) -> int:
    """Put ``product`` in the session cart and record ``add_to_cart``; the new quantity."""
    new_quantity = Cart(request).add(product, quantity)
    record(request, "add_to_cart", product)
    return new_quantity


def remove_from_cart(request: HttpRequest, product: Product) -> bool:
    return Cart(request).remove(product)


def place_order(request: HttpRequest) -> Order:
    """Turn the signed-in shopper's cart into an Order and record the purchases.

    Raises:
        EmptyCart: the cart has no (existing) products in it.
    """
    cart = Cart(request)
    lines = [line for line in cart.lines() if line.product.in_stock]
    if not lines:
        raise EmptyCart
    with transaction.atomic():
        # Checkout is login_required, so the user is never anonymous here.
        order = Order.objects.create(user=request.user, total=Cart.total(lines))  # type: ignore[misc]
        OrderLine.objects.bulk_create(
            OrderLine(order=order, product=line.product, quantity=line.quantity,
                      unit_price=line.product.price)
            for line in lines
        )
    cart.clear()
    for line in lines:
        # the line's amount is the purchase's value: the revenue experiments compare
        record(request, "purchase", line.product, value=float(line.subtotal),
               order=order.reference)
    return order
