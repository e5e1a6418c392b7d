"""The shop's template helpers."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.template.defaultfilters import floatformat

from example_shop.shop.templatetags.shop import price


def test_price_shows_what_floatformat_2_shows():
    rng = random.Random(7)
    values = [round(rng.uniform(0, 5000), rng.choice([0, 1, 2, 3, 4])) for _ in range(2000)]
    values += [2.675, 1.005, 0.005, 0.0, 1e6, 12, Decimal("3.10"), "12.5", -4.235]
    for value in values:
        assert price(value) == floatformat(value, 2), value


@pytest.mark.parametrize("value", [None, "", "n/a", True, float("nan"), float("inf")])
def test_no_price_shows_nothing(value):
    assert price(value) == ""
