"""The data the contract test fits: a synthetic shop, a sparse one, random snapshots."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from personalize.dataset import Dataset, ItemContent

#: A subject id and an item id that no dataset of the contract holds.
UNKNOWN_SUBJECT = -424242
UNKNOWN_ITEM = -999

_CATEGORIES = ("shirts", "shoes", "hats", "bags")
_COLOURS = ("red", "blue", "green", "black", "white")


def synthetic_shop(seed: int = 0, subjects: int = 60, items: int = 40) -> Dataset:
    """A small shop every strategy can fit: interactions, ratings, texts and categories.

    Item ids are ``101..100+items`` and subject ids ``1..subjects`` (integers,
    like ``Item.pk`` and ``Subject.pk``); items fall in 4 categories, with a
    long tail of appeal, and each shopper prefers one category. Each shopper
    has 8 events mixing views, clicks, purchases and ratings over 60 days.
    """
    rng = np.random.default_rng(seed)
    item_ids = np.arange(101, 101 + items)
    category_of = np.arange(items) % len(_CATEGORIES)
    appeal = 1.0 / np.arange(1, items + 1) ** 0.8
    who, what, kinds, values, stamps = [], [], [], [], []
    for subject in range(1, subjects + 1):
        liked = (subject - 1) % len(_CATEGORIES)
        weights = appeal * np.where(category_of == liked, 6.0, 1.0)
        chosen = rng.choice(items, size=8, replace=False, p=weights / weights.sum())
        for position, item in enumerate(chosen):
            kind = ("view", "click", "purchase", "rating")[position % 4]
            who.append(subject)
            what.append(item_ids[item])
            kinds.append(kind)
            values.append(float(rng.integers(3, 6)) if kind == "rating" else np.nan)
            stamps.append(1_700_000_000.0 + rng.uniform(0, 60) * 86_400.0)
    names = [f"{_CATEGORIES[c][:-1]}" for c in category_of]
    content = ItemContent(
        ids=item_ids,
        titles=[f"{_COLOURS[n % 5]} {names[n]} {n}" for n in range(items)],
        texts=[f"A {_COLOURS[n % 5]} {names[n]} made of {('cotton', 'leather', 'wool')[n % 3]}, "
               f"model {n}." for n in range(items)],
        categories=[[_CATEGORIES[c]] for c in category_of],
        attributes=[{"price": float(10 + n)} for n in range(items)],
    )
    return Dataset.from_arrays(who, what, kinds, values, stamps, content=content)


def sparse_shop(seed: int = 5) -> Dataset:
    """:func:`synthetic_shop` (30 subjects, 25 items) plus the awkward shapes, for evaluation.

    Three newcomers: one with a single view of an item nobody else saw, one who
    rated another such item and viewed a popular one, so that every protocol
    meets single-event subjects and items seen once.
    """
    shop = synthetic_shop(seed=seed, subjects=30, items=25)
    events = shop.events
    who = [*shop.subject_ids[events.subject_idx].tolist(), 900, 901, 901]
    what = [*shop.item_ids[events.item_idx].tolist(), 990, 991, 101]
    kinds = [*(shop.event_types[t] for t in events.event_type.tolist()), "view", "rating", "view"]
    values = [*events.rating.tolist(), None, 4.0, None]
    stamps = [*events.timestamp.tolist(), 1.8e9, 1.8e9, 1.8e9 + 1]
    return Dataset.from_arrays(who, what, kinds, values, stamps,
                               content=_content_of(shop, [990, 991]))


def _content_of(shop: Dataset, extra: list[int]) -> ItemContent:
    ids = [*shop.item_ids.tolist(), *extra]
    return ItemContent(
        ids=np.asarray(ids),
        titles=[*shop.item_titles, *(f"item {n}" for n in extra)],
        texts=[*shop.item_texts, *(f"A plain item, model {n}." for n in extra)],
        categories=[*shop.item_categories, *([_CATEGORIES[0]] for _ in extra)],
        attributes=[*shop.item_attributes, *({} for _ in extra)],
    )


_KINDS = ("view", "click", "purchase", "rating")


@st.composite
def sparse_datasets(draw: st.DrawFn) -> Dataset:
    """A random, sparse snapshot of the awkward shapes real data has (hypothesis).

    Few subjects and items (a subject may have a single event, an item may be
    seen once, some items have no neighbour at all, catalog items may have no
    event), integer or string ids, implicit events alone, ratings alone or both
    mixed, zero-weight and negative events, with or without timestamps; every
    item has a title, a text and a category.
    """
    n_items = draw(st.integers(1, 12))
    n_subjects = draw(st.integers(1, 10))
    kinds = draw(st.sampled_from([("view",), ("rating",), _KINDS, ("view", "purchase"),
                                  ("impression", "dislike", "view", "rating")]))
    string_ids = draw(st.booleans())
    timed = draw(st.booleans())
    who: list[Any] = []
    what: list[Any] = []
    types: list[str] = []
    values: list[float] = []
    stamps: list[float] = []
    for subject in range(1, n_subjects + 1):
        chosen = draw(st.lists(st.integers(0, n_items - 1), min_size=1, max_size=5))
        for item in chosen:
            kind = draw(st.sampled_from(kinds))
            who.append(f"s{subject}" if string_ids else subject)
            what.append(f"i{101 + item}" if string_ids else 101 + item)
            types.append(kind)
            values.append(draw(st.sampled_from([1.0, 2.5, 4.0, 5.0])) if kind == "rating"
                          else np.nan)
            stamps.append(1_700_000_000.0 + len(stamps) * 3_600.0 if timed else 0.0)
    # catalog items nobody touched: a column each, and no neighbour
    unseen = draw(st.integers(0, 2))
    seen = [*sorted(set(what), key=str),
            *((f"i{900 + n}" if string_ids else 900 + n) for n in range(unseen))]
    content = ItemContent(
        ids=np.asarray(seen),
        titles=[f"item {item}" for item in seen],
        texts=[f"A {_COLOURS[n % 5]} {_CATEGORIES[n % 4][:-1]} called {item}."
               for n, item in enumerate(seen)],
        categories=[[_CATEGORIES[n % 4]] for n in range(len(seen))],
        attributes=[{} for _ in seen],
    )
    return Dataset.from_arrays(who, what, types, values, stamps, content=content)
