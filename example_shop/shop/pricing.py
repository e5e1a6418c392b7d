"""Synthetic prices: the Amazon data set has none, so a price is derived from the ASIN.

Deterministic (the same ASIN always gets the same price, on every machine and
every run), spread log-uniformly between about $4 and $150 like a real
industrial-supplies catalog, and ending in .99, .49 or .95.
"""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal

MIN_PRICE = 4.0
MAX_PRICE = 150.0
_ENDINGS = (Decimal("0.99"), Decimal("0.49"), Decimal("0.95"), Decimal("0.99"))


def _unit(asin: str, salt: str) -> float:
    """A number in [0, 1) from a hash of the ASIN (stable, unlike ``hash()``)."""
    digest = hashlib.sha256(f"{salt}:{asin}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def synthetic_price(asin: str) -> Decimal:
    """The demo price of a product, e.g. ``Decimal("23.49")``.

    Args:
        asin: the product's ASIN.

    Returns:
        A price between ``MIN_PRICE`` and ``MAX_PRICE`` with two decimal places.
    """
    log_price = math.log(MIN_PRICE) + _unit(asin, "price") * (
        math.log(MAX_PRICE) - math.log(MIN_PRICE)
    )
    dollars = int(math.exp(log_price))
    ending = _ENDINGS[int(_unit(asin, "cents") * len(_ENDINGS))]
    return Decimal(max(dollars - 1, 3)) + ending


def synthetic_in_stock(asin: str) -> bool:
    """About 3% of products are out of stock, so availability filters have work to do."""
    return _unit(asin, "stock") >= 0.03
