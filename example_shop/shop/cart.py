"""The shopping cart, kept in the session: ``{product id: quantity}``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.http import HttpRequest

from example_shop.shop.models import Product

SESSION_KEY = "shop_cart"
MAX_QUANTITY = 99


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        return self.product.price * self.quantity


class Cart:
    """A visitor's cart; every change is saved to the session at once."""

    def __init__(self, request: HttpRequest) -> None:
        self.session = request.session
        raw = self.session.get(SESSION_KEY) or {}
        self._quantities: dict[str, int] = {
            str(k): int(v) for k, v in raw.items() if str(k).isdigit() and int(v) > 0
        }

    def _save(self) -> None:
        self.session[SESSION_KEY] = self._quantities
        self.session.modified = True

    def add(self, product: Product, quantity: int = 1) -> int:
        """Add ``quantity`` of ``product``; returns the new quantity in the cart."""
        key = str(product.pk)
        new = min(self._quantities.get(key, 0) + max(quantity, 1), MAX_QUANTITY)
        self._quantities[key] = new
        self._save()
        return new

    def remove(self, product: Product) -> bool:
        """Take ``product`` out of the cart; whether it was there."""
        removed = self._quantities.pop(str(product.pk), None) is not None
        self._save()
        return removed

    def clear(self) -> None:
        self._quantities = {}
        self._save()

    def __len__(self) -> int:
        """How many units are in the cart."""
        return sum(self._quantities.values())

    def product_ids(self) -> list[int]:
        """Product ids in the order they were first added."""
        return [int(k) for k in self._quantities]

    def lines(self) -> list[CartLine]:
        """The cart's lines (products deleted since are dropped)."""
        products = Product.objects.select_related("category").in_bulk(self.product_ids())
        return [
            CartLine(products[int(k)], quantity)
            for k, quantity in self._quantities.items()
            if int(k) in products
        ]

    @staticmethod
    def total(lines: list[CartLine]) -> Decimal:
        return sum((line.subtotal for line in lines), Decimal("0.00"))
