"""Popularity and Trending: counts, windows, decay, categories, empty histories."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.dataset import Dataset
from personalize.dataset.raw import ItemContent
from personalize.strategies.history import History
from personalize.strategies.popularity import Popularity, Trending

DAY = 86_400.0
NOW = 1_700_000_000.0


def make_small(extra=()):
    # item 1: 3 subjects (one of them 3 times); item 2: 2 subjects with purchases;
    # item 3: 1 subject, recently; item 4: in the catalog only
    subjects = [1, 1, 1, 2, 3, 1, 2, 4]
    items = [1, 1, 1, 1, 1, 2, 2, 3]
    types = ["view", "view", "view", "view", "view", "purchase", "purchase", "view"]
    stamps = [NOW - 30 * DAY, NOW - 29 * DAY, NOW - 28 * DAY, NOW - 20 * DAY, NOW - 20 * DAY,
              NOW - 10 * DAY, NOW - 10 * DAY, NOW]
    for subject, item, kind in extra:
        subjects.append(subject)
        items.append(item)
        types.append(kind)
        stamps.append(NOW)
    content = ItemContent(ids=np.array([1, 2, 3, 4]), titles=["a", "b", "c", "d"],
                          categories=[["x"], ["y"], ["x"], ["y"]])
    return Dataset.from_arrays(subjects, items, types, timestamps=stamps, content=content)


@pytest.fixture
def small():
    return make_small()


def scores(strategy, dataset):
    artifact = strategy.fit(dataset)
    return dict(zip(artifact["item_ids"].tolist(), artifact["scores"].tolist(), strict=True))


def test_counts_distinct_subjects_by_default(small):
    assert scores(Popularity(), small) == {1: 3.0, 2: 2.0, 3: 1.0, 4: 0.0}


def test_count_events_and_weight(small):
    assert scores(Popularity(count="events"), small) == {1: 5.0, 2: 2.0, 3: 1.0, 4: 0.0}
    assert scores(Popularity(count="weight"), small) == {1: 5.0, 2: 16.0, 3: 1.0, 4: 0.0}


def test_window_days(small):
    assert scores(Popularity(window_days=15), small) == {1: 0.0, 2: 2.0, 3: 1.0, 4: 0.0}


def test_empty_history_gets_the_most_popular(small):
    strategy = Popularity()
    artifact = strategy.fit(small)
    assert strategy.recommend(artifact, History(), 2) == [(1, 3.0), (2, 2.0)]


def test_history_and_excluded_items_are_skipped(small):
    strategy = Popularity()
    artifact = strategy.fit(small)
    result = strategy.recommend(artifact, History(item_ids=[1]), 10, exclude=[3])
    assert [item for item, _ in result] == [2, 4]


def test_per_category_puts_the_subjects_categories_first():
    strategy = Popularity(per_category=True)
    # item 4 (category y) gets one viewer: less popular than item 1 (x), as popular as 3 (x)
    small = make_small(extra=[(4, 4, "view")])
    artifact = strategy.fit(small)
    # a fan of category y (item 2) sees item 4 (y) before items 1 and 3 (x)
    result = strategy.recommend(artifact, History(item_ids=[2]), 3)
    assert [item for item, _ in result] == [4, 1, 3]
    # without a history it is plain popularity
    assert [i for i, _ in strategy.recommend(artifact, History(), 2)] == [1, 2]
    # without per_category the history's category does not matter
    plain = Popularity()
    assert [i for i, _ in plain.recommend(plain.fit(small), History(item_ids=[2]), 3)] == [1, 3, 4]


def test_popular_in_category(small):
    strategy = Popularity()
    artifact = strategy.fit(small)
    assert artifact["category_names"].tolist() == ["x", "y"]
    assert strategy.popular_in_category(artifact, "x", 5) == [(1, 3.0), (3, 1.0)]
    assert strategy.popular_in_category(artifact, "x", 5, exclude=[1]) == [(3, 1.0)]
    assert strategy.popular_in_category(artifact, "nope", 5) == []


def test_without_categories_no_category_arrays():
    ds = Dataset.from_arrays([1, 2], [5, 6], "view", timestamps=[1, 2])
    artifact = Popularity(per_category=True).fit(ds)
    assert "category_names" not in artifact
    assert Popularity(per_category=True).recommend(artifact, History(item_ids=[5]), 2) == [
        (6, 1.0)]


def test_trending_decays_by_age(small):
    trend = scores(Trending(half_life_days=10.0, window_days=None), small)
    assert trend[3] == pytest.approx(1.0)
    assert trend[2] == pytest.approx(16 * 0.5)  # two purchases 10 days ago
    assert trend[1] == pytest.approx(0.5 ** 3 + 0.5 ** 2.9 + 0.5 ** 2.8 + 2 * 0.5 ** 2)
    strategy = Trending(half_life_days=1.0)
    ranked = strategy.recommend(strategy.fit(small), History(), 3)
    assert ranked[0][0] == 3  # the only event of the last days


def test_trending_window(small):
    trend = scores(Trending(half_life_days=10.0, window_days=15), small)
    assert trend[1] == 0.0


@pytest.mark.parametrize(("cls", "options", "message"), [
    (Popularity, {"count": "likes"}, "count must be one of subjects, events, weight"),
    (Popularity, {"window_days": 0}, "window_days must be positive or None"),
    (Trending, {"half_life_days": -1}, "half_life_days must be positive"),
    (Trending, {"window_days": -3}, "window_days must be positive or None"),
])
def test_options_are_validated(cls, options, message):
    with pytest.raises(ValueError, match=message):
        cls(**options)
