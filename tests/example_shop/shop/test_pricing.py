from decimal import Decimal

from example_shop.shop.pricing import MAX_PRICE, MIN_PRICE, synthetic_in_stock, synthetic_price


def test_price_is_deterministic_and_in_range():
    asins = [f"B{n:09d}" for n in range(2000)]
    prices = [synthetic_price(a) for a in asins]
    assert prices == [synthetic_price(a) for a in asins]
    assert all(Decimal(MIN_PRICE) - 1 <= p <= Decimal(MAX_PRICE) for p in prices)
    assert all(p == p.quantize(Decimal("0.01")) for p in prices)
    # Spread over the range, not clustered.
    assert len({int(p) for p in prices}) > 100
    assert min(prices) < 10 < 100 < max(prices)


def test_a_few_products_are_out_of_stock():
    flags = [synthetic_in_stock(f"B{n:09d}") for n in range(5000)]
    share = flags.count(False) / len(flags)
    assert 0.01 < share < 0.06
    assert flags == [synthetic_in_stock(f"B{n:09d}") for n in range(5000)]
