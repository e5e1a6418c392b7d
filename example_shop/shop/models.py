"""The shop's catalog and orders.

Products come from the Amazon 2018 Industrial & Scientific data set (see
``example_shop/shop/seeding.py``); their prices are synthetic (see
:func:`example_shop.shop.pricing.synthetic_price`): the data set has none.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Category(models.Model):
    """A top-level department such as "Lab & Scientific Products"."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:category", args=[self.slug])


class Product(models.Model):
    """A product; ``asin`` is Amazon's id and the Item's external id."""

    asin = models.CharField("ASIN", max_length=20, unique=True)
    name = models.CharField(max_length=500)
    description = models.TextField(
        blank=True, help_text="The product type below the department, from the category path."
    )
    brand = models.CharField(max_length=200, blank=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    price = models.DecimalField(
        max_digits=8, decimal_places=2, default=Decimal("0.00"),
        help_text="Synthetic: derived from a hash of the ASIN (the data set has no prices).",
    )
    in_stock = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("shop:product", args=[self.asin])

    @property
    def image_url(self) -> str:
        """The product's picture: a drawn badge (the data set has no images)."""
        return reverse("shop:product-image", args=[self.asin])


def new_order_reference() -> str:
    """A short order number shown to the customer."""
    return "O-" + secrets.token_hex(5).upper()


class Order(models.Model):
    """A placed order. Seeded orders have references ``S-<user index>-<position>``."""

    reference = models.CharField(max_length=32, unique=True, default=new_order_reference)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orders"
    )
    # Not auto_now_add: seeded orders carry their synthetic purchase times.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    total = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reference


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product}"

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity
