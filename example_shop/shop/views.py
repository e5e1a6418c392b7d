"""The shop's pages. Thin: the work is in :mod:`example_shop.shop.services`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from example_shop.shop import services
from example_shop.shop.cart import Cart
from example_shop.shop.models import Category, Order, Product

PAGE_SIZE = 24
SORTS = {"name": "name", "price": "price", "-price": "-price"}


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "shop/home.html", {
        "categories": services.categories_with_counts(),
        "best_sellers": services.best_sellers(8),
    })


def _page(request: HttpRequest, products: object) -> object:
    return Paginator(products, PAGE_SIZE).get_page(request.GET.get("page"))  # type: ignore[arg-type]


def category(request: HttpRequest, slug: str) -> HttpResponse:
    current = get_object_or_404(Category, slug=slug)
    sort = request.GET.get("sort", "name")
    products = current.products.select_related("category").order_by(SORTS.get(sort, "name"), "pk")
    return render(request, "shop/category.html", {
        "category": current,
        "page_obj": _page(request, products),
        "sort": sort if sort in SORTS else "name",
        "categories": services.categories_with_counts(),
    })


def search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    products = services.search_products(query) if query else Product.objects.none()
    if query and request.GET.get("page") in (None, "1"):
        services.record(request, "search", query=query)
    return render(
        request, "shop/search.html", {"query": query, "page_obj": _page(request, products)}
    )


def product_detail(request: HttpRequest, asin: str) -> HttpResponse:
    product = get_object_or_404(Product.objects.select_related("category"), asin=asin)
    services.view_product(request, product)
    return render(request, "shop/product.html", {"product": product})


@cache_control(public=True, max_age=86400)
def product_image(request: HttpRequest, asin: str) -> HttpResponse:
    """The product's picture (an SVG badge); what the catalog maps as its ``image``."""
    product = get_object_or_404(Product, asin=asin)
    return render(request, "shop/product_image.svg", services.product_badge(product),
                  content_type="image/svg+xml")


def cart_detail(request: HttpRequest) -> HttpResponse:
    cart = Cart(request)
    lines = cart.lines()
    return render(request, "shop/cart.html", {
        "lines": lines,
        "total": Cart.total(lines),
        # The complementary block is built around the latest product added.
        "anchor": lines[-1].product if lines else None,
    })


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    product = get_object_or_404(Product, pk=request.POST.get("product"))
    if not product.in_stock:
        messages.error(request, f"Sorry, “{product.name}” is out of stock.")
        return redirect(product)
    try:
        quantity = max(1, int(request.POST.get("quantity", 1)))
    except ValueError:
        quantity = 1
    services.add_to_cart(request, product, quantity)
    messages.success(request, f"Added “{product.name}” to your cart.")
    return redirect("shop:cart")


@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    product = get_object_or_404(Product, pk=request.POST.get("product"))
    if services.remove_from_cart(request, product):
        messages.info(request, f"Removed “{product.name}” from your cart.")
    return redirect("shop:cart")


@login_required
def checkout(request: HttpRequest) -> HttpResponse:
    cart = Cart(request)
    if request.method == "POST":
        try:
            order = services.place_order(request)
        except services.EmptyCart:
            messages.error(request, "Your cart is empty.")
            return redirect("shop:cart")
        messages.success(request, f"Thank you! Your order {order.reference} is placed.")
        return redirect("shop:order", reference=order.reference)
    lines = cart.lines()
    if not lines:
        return redirect("shop:cart")
    return render(request, "shop/checkout.html", {"lines": lines, "total": Cart.total(lines)})


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    orders = (
        Order.objects.filter(user=request.user)  # type: ignore[misc]
        .prefetch_related("lines__product")
        .order_by("-created_at", "-pk")
    )
    return render(request, "shop/orders.html", {"page_obj": _page(request, orders)})


@login_required
def order_detail(request: HttpRequest, reference: str) -> HttpResponse:
    order = get_object_or_404(
        Order.objects.prefetch_related("lines__product"),
        reference=reference, user=request.user,
    )
    return render(request, "shop/order.html", {"order": order})
