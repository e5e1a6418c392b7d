"""Attribution on scripted timelines, and against a plain-Python reference on random ones."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from personalize.outcomes.attribution import (
    ADD_TO_CART,
    HOUR,
    NOT_ATTRIBUTED,
    PURCHASE,
    VIA_CLICK,
    VIA_VIEW,
    Clicks,
    Conversions,
    Exposures,
    Rules,
    attribute,
)

H = HOUR
MIN = H // 60
RULES = Rules(window=24 * H)


def imp(n: int) -> bytes:
    return uuid.UUID(int=n + 1).bytes


class Timeline:
    """A hand-written sequence of blocks, clicks and conversions (times in hours)."""

    def __init__(self) -> None:
        self.exposures: list[tuple[int, int, int, list[int]]] = []
        self.clicks: list[tuple[int, int, int, bytes, int]] = []
        self.conversions: list[tuple[int, int, int, int, float]] = []

    def show(self, subject: int, at: float, items: list[int]) -> int:
        self.exposures.append((len(self.exposures), subject, round(at * H), items))
        return len(self.exposures) - 1

    def click(self, subject: int, exposure: int, item: int, at: float, *,
              position: int = 0) -> int:
        self.clicks.append((subject, item, round(at * H), imp(exposure), position))
        return len(self.clicks) - 1

    def buy(self, subject: int, item: int, at: float, value: float | None = 10.0) -> int:
        self.conversions.append((subject, item, round(at * H), PURCHASE,
                                 np.nan if value is None else value))
        return len(self.conversions) - 1

    def cart(self, subject: int, item: int, at: float) -> int:
        self.conversions.append((subject, item, round(at * H), ADD_TO_CART, 0.0))
        return len(self.conversions) - 1

    def run(self, rules: Rules = RULES):
        e = self.exposures
        c = self.clicks or []
        v = self.conversions or []
        return attribute(
            Exposures.build([imp(n) for n, *_ in e], [s for _, s, _, _ in e],
                            [t for _, _, t, _ in e], [items for *_, items in e]),
            Clicks.build([x[0] for x in c], [x[1] for x in c], [x[2] for x in c],
                         [x[3] for x in c], [x[4] for x in c]),
            Conversions.build([x[0] for x in v], [x[1] for x in v], [x[2] for x in v],
                              [x[3] for x in v], [x[4] for x in v]),
            rules,
        )


def test_a_purchase_within_the_window_after_a_click_is_the_blocks():
    t = Timeline()
    block = t.show(1, 0, [10, 11, 12])
    t.click(1, block, 11, 0.1)
    t.buy(1, 11, 23.9, value=42.5)
    result = t.run()
    assert result.click_exposure.tolist() == [block]
    assert result.conversion_exposure.tolist() == [block]
    assert result.conversion_via.tolist() == [VIA_CLICK]
    assert result.clicks.tolist() == [1]
    assert result.conversions.tolist() == [1]
    assert result.revenue.tolist() == [42.5]


def test_a_purchase_after_the_window_is_not_attributed():
    t = Timeline()
    block = t.show(1, 0, [10])
    t.click(1, block, 10, 1)
    t.buy(1, 10, 25.01)
    result = t.run()
    assert result.clicks.tolist() == [1]
    assert result.conversion_exposure.tolist() == [-1]
    assert result.conversion_via.tolist() == [NOT_ATTRIBUTED]
    assert result.conversions.tolist() == [0] and result.revenue.tolist() == [0.0]


def test_the_window_is_inclusive_and_a_click_at_the_same_instant_counts():
    t = Timeline()
    block = t.show(1, 0, [10, 11])
    t.click(1, block, 10, 1)
    t.buy(1, 10, 25)          # exactly 24 h after the click
    t.click(1, block, 11, 2)
    t.buy(1, 11, 2)           # the same microsecond as the click
    assert t.run().conversion_exposure.tolist() == [block, block]


def test_a_purchase_before_the_click_is_not_attributed():
    t = Timeline()
    block = t.show(1, 0, [10])
    t.buy(1, 10, 0.5)
    t.click(1, block, 10, 1)
    assert t.run().conversion_exposure.tolist() == [-1]


def test_two_clicks_on_the_same_item_in_two_blocks_the_last_click_wins():
    t = Timeline()
    home = t.show(1, 0, [10, 11])
    product = t.show(1, 2, [12, 10])
    t.click(1, home, 10, 1)
    t.click(1, product, 10, 3)
    t.buy(1, 10, 5, value=20)
    result = t.run()
    assert result.conversion_exposure.tolist() == [product]
    assert result.conversion_click.tolist() == [1]
    assert result.clicks.tolist() == [1, 1]
    assert result.conversions.tolist() == [0, 1]
    assert result.revenue.tolist() == [0.0, 20.0]


def test_the_last_click_wins_even_from_an_older_block():
    # an old tab clicked after a newer block's click: last click, not last block
    t = Timeline()
    old = t.show(1, 0, [10])
    new = t.show(1, 1, [10])
    t.click(1, new, 10, 2)
    t.click(1, old, 10, 3)
    t.buy(1, 10, 4)
    assert t.run().conversion_exposure.tolist() == [old]


def test_clicks_at_the_same_instant_go_to_the_later_one_given():
    t = Timeline()
    a = t.show(1, 0, [10])
    b = t.show(1, 0, [10])
    t.click(1, a, 10, 1)
    t.click(1, b, 10, 1)
    t.buy(1, 10, 2)
    assert t.run().conversion_exposure.tolist() == [b]


def test_a_purchase_without_a_click_is_not_attributed_without_view_through():
    t = Timeline()
    t.show(1, 0, [10, 11])
    t.buy(1, 11, 1)
    result = t.run()
    assert result.conversion_exposure.tolist() == [-1]
    assert result.conversions.tolist() == [0]


def test_view_through_gives_an_unclaimed_purchase_to_the_latest_block_that_showed_it():
    t = Timeline()
    first = t.show(1, 0, [10, 11])
    second = t.show(1, 5, [11, 12])
    t.show(1, 7, [13])                   # later, but did not show item 11
    t.show(2, 6, [11])                   # showed it, to someone else
    t.buy(1, 11, 8, value=5)
    t.cart(1, 12, 8)                     # add-to-carts are not attributed by view
    t.buy(1, 10, 40)                     # past the view-through window
    result = t.run(Rules(window=24 * H, view_through=12 * H))
    assert result.conversion_exposure.tolist() == [second, -1, -1]
    assert result.conversion_via.tolist() == [VIA_VIEW, NOT_ATTRIBUTED, NOT_ATTRIBUTED]
    assert result.conversions[second] == 1 and result.revenue[second] == 5
    assert result.conversions[first] == 0
    assert result.add_to_carts.sum() == 0


def test_a_click_claims_a_purchase_before_view_through_does():
    t = Timeline()
    clicked = t.show(1, 0, [10])
    t.click(1, clicked, 10, 1)
    shown_later = t.show(1, 2, [10])
    t.buy(1, 10, 3)
    result = t.run(Rules(window=24 * H, view_through=24 * H))
    assert result.conversion_exposure.tolist() == [clicked]
    assert result.conversion_via.tolist() == [VIA_CLICK]
    assert result.conversions[shown_later] == 0


def test_add_to_cart_then_purchase_count_once_each():
    t = Timeline()
    block = t.show(1, 0, [10])
    t.click(1, block, 10, 1)
    t.cart(1, 10, 1.5)
    t.buy(1, 10, 2, value=None)          # no value: revenue 0
    result = t.run()
    assert result.conversion_exposure.tolist() == [block, block]
    assert result.add_to_carts.tolist() == [1]
    assert result.conversions.tolist() == [1]
    assert result.revenue.tolist() == [0.0]


def test_clicks_that_are_not_clicks_on_the_block_are_ignored():
    t = Timeline()
    block = t.show(1, 0, [10, 11])
    t.click(2, block, 10, 1)                         # someone else's impression id
    t.click(1, block, 99, 1)                         # an item the block did not show
    t.clicks.append((1, 10, 1 * H, imp(500), 1))     # an unknown impression
    t.clicks.append((1, 10, 1 * H, b"", 0))          # no impression at all
    t.click(1, block, 10, 24.5)                      # past the window after the block
    t.click(1, block, 11, -1)                        # long before the block
    t.buy(1, 10, 25)
    t.buy(2, 10, 2)
    result = t.run()
    assert result.click_exposure.tolist() == [-1] * 6
    assert result.clicks.tolist() == [0]
    assert result.conversion_exposure.tolist() == [-1, -1]


def test_a_click_stamped_slightly_before_its_block_counts_within_the_skew():
    t = Timeline()
    block = t.show(1, 1, [10])
    t.click(1, block, 10, 1 - 2 / 60)   # two minutes early (a browser's clock)
    t.buy(1, 10, 2)
    assert t.run(Rules(window=24 * H, skew=5 * MIN)).conversion_exposure.tolist() == [block]
    assert t.run(Rules(window=24 * H, skew=MIN)).conversion_exposure.tolist() == [-1]


def test_an_item_less_click_names_the_item_by_its_position():
    t = Timeline()
    block = t.show(1, 0, [10, 11, 12])
    t.click(1, block, -1, 1, position=2)
    t.click(1, block, -1, 1, position=9)   # no such position
    t.buy(1, 11, 2)
    result = t.run()
    assert result.click_exposure.tolist() == [block, -1]
    assert result.conversion_exposure.tolist() == [block]


def test_an_erased_subjects_rows_are_gone_and_nobody_elses_change():
    t = Timeline()
    mine = t.show(1, 0, [10])
    t.click(1, mine, 10, 1)
    t.buy(1, 10, 2, value=7)
    theirs = t.show(2, 0, [10])
    t.click(2, theirs, 10, 1.5)
    t.buy(2, 10, 3, value=9)
    before = t.run()
    # erasure deletes subject 1's exposures and events: what remains is subject 2's
    erased = Timeline()
    erased.exposures = [(theirs, 2, 0, [10])]
    erased.clicks = [c for c in t.clicks if c[0] == 2]
    erased.conversions = [c for c in t.conversions if c[0] == 2]
    after = erased.run()
    assert after.clicks.tolist() == [before.clicks[theirs]] == [1]
    assert after.revenue.tolist() == [before.revenue[theirs]] == [9.0]


def test_empty_inputs():
    result = Timeline().run()
    assert len(result.clicks) == 0 and len(result.conversion_exposure) == 0
    t = Timeline()
    t.buy(1, 10, 1)
    t.clicks.append((1, 10, 0, imp(0), 1))
    result = t.run(Rules(window=H, view_through=H))
    assert result.conversion_exposure.tolist() == [-1]
    assert result.click_exposure.tolist() == [-1]


def test_inconsistent_arrays_are_refused():
    with pytest.raises(ValueError, match="do not match"):
        Exposures.build([imp(0)], [1, 2], [0], [[1]])
    with pytest.raises(ValueError, match="CSR"):
        Exposures.build([imp(0)], [1], [0], indptr=[0, 3], flat=[1])
    with pytest.raises(ValueError, match="do not match"):
        Clicks.build([1], [1, 2], [0], [imp(0)])
    with pytest.raises(ValueError, match="do not match"):
        Conversions.build([1], [1], [0], [PURCHASE, PURCHASE])


# --- against a reference written the obvious way --------------------------------------


def reference(t: Timeline, rules: Rules):
    """The rules, one event at a time: what the vectorised code must agree with."""
    blocks = {imp(n): (n, s, at, items) for n, s, at, items in t.exposures}
    click_exposure = []
    for subject, item, at, impression, position in t.clicks:
        block = blocks.get(impression)
        if block is None:
            click_exposure.append(-1)
            continue
        n, owner, shown_at, items = block
        if item < 0 and 1 <= position <= len(items):
            item = items[position - 1]
        ok = (owner == subject and item in items and item >= 0
              and -rules.skew <= at - shown_at <= rules.window)
        click_exposure.append(n if ok else -1)
    conv = []
    for subject, item, at, kind, _ in t.conversions:
        best = None
        for i, (s, it, c_at, impression, position) in enumerate(t.clicks):
            if click_exposure[i] < 0 or s != subject:
                continue
            items = blocks[impression][3]
            if it < 0:
                it = items[position - 1]
            if it == item and c_at <= at and at - c_at <= rules.window and (
                    best is None or (c_at, i) >= (t.clicks[best][2], best)):
                best = i
        if best is not None:
            conv.append(click_exposure[best])
            continue
        seen = None
        if rules.view_through is not None and kind == PURCHASE:
            for n, s, shown_at, items in t.exposures:
                if s == subject and item in items and 0 <= at - shown_at <= rules.view_through \
                        and (seen is None or (shown_at, n) >= (t.exposures[seen][2], seen)):
                    seen = n
        conv.append(-1 if seen is None else seen)
    return click_exposure, conv


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_the_reference_on_random_timelines(seed):
    rng = np.random.default_rng(seed)
    t = Timeline()
    for _ in range(60):
        t.show(int(rng.integers(1, 6)), float(rng.uniform(0, 72)),
               [int(x) for x in rng.choice(12, size=int(rng.integers(0, 5)), replace=False)])
    for _ in range(120):
        n = int(rng.integers(0, len(t.exposures)))
        _, owner, shown_at, items = t.exposures[n]
        subject = owner if rng.random() < 0.85 else int(rng.integers(1, 6))
        at = shown_at / H + float(rng.uniform(-0.2, 30))
        if items and rng.random() < 0.2:
            t.click(subject, n, -1, at, position=int(rng.integers(1, len(items) + 2)))
        else:
            item = int(rng.choice(items)) if items and rng.random() < 0.9 else 11
            t.click(subject, n, item, at)
    for _ in range(150):
        subject, item = int(rng.integers(1, 6)), int(rng.integers(0, 12))
        at = float(rng.uniform(0, 110))
        if rng.random() < 0.5:
            t.buy(subject, item, at, value=float(rng.integers(1, 50)))
        else:
            t.cart(subject, item, at)
    # integral hours make ties common: the tie rules are exercised too
    t.clicks = [(s, i, round(at / H) * H if k % 3 == 0 else at, m, p)
                for k, (s, i, at, m, p) in enumerate(t.clicks)]
    for rules in (Rules(window=24 * H), Rules(window=6 * H, view_through=30 * H, skew=15 * MIN)):
        result = t.run(rules)
        clicks, conversions = reference(t, rules)
        assert result.click_exposure.tolist() == clicks
        assert result.conversion_exposure.tolist() == conversions
        revenue = np.zeros(len(t.exposures))
        for (_, _, _, kind, value), target in zip(t.conversions, conversions, strict=True):
            if target >= 0 and kind == PURCHASE:
                revenue[target] += value
        assert np.allclose(result.revenue, revenue)
