"""A small synthetic shop every strategy can fit: interactions, ratings, texts, categories."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.training.dataset import Dataset
from personalize.training.readers import ItemContent

CATEGORIES = ("shirts", "shoes", "hats", "bags")
COLOURS = ("red", "blue", "green", "black", "white")
N_SUBJECTS = 60
N_ITEMS = 40
T0 = 1_700_000_000.0
DAY = 86_400.0


def make_dataset(seed: int = 0) -> Dataset:
    """60 shoppers, 40 products in 4 categories; each shopper prefers one category.

    Item ids are 101..140 and subject ids 1..60 (integers, like Item.pk and
    Subject.pk). Events mix views, clicks, purchases and ratings over 60 days.
    """
    rng = np.random.default_rng(seed)
    item_ids = np.arange(101, 101 + N_ITEMS)
    category_of = np.arange(N_ITEMS) % len(CATEGORIES)
    appeal = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8  # long tail
    subjects, items, types, values, stamps = [], [], [], [], []
    for subject in range(1, N_SUBJECTS + 1):
        liked = (subject - 1) % len(CATEGORIES)
        weights = appeal * np.where(category_of == liked, 6.0, 1.0)
        chosen = rng.choice(N_ITEMS, size=8, replace=False, p=weights / weights.sum())
        for position, item in enumerate(chosen):
            kind = ("view", "click", "purchase", "rating")[position % 4]
            subjects.append(subject)
            items.append(item_ids[item])
            types.append(kind)
            values.append(float(rng.integers(3, 6)) if kind == "rating" else np.nan)
            stamps.append(T0 + rng.uniform(0, 60) * DAY)
    content = ItemContent(
        ids=item_ids,
        titles=[f"{COLOURS[n % 5]} {CATEGORIES[category_of[n]][:-1]} {n}" for n in range(N_ITEMS)],
        texts=[
            f"A {COLOURS[n % 5]} {CATEGORIES[category_of[n]][:-1]} made of "
            f"{('cotton', 'leather', 'wool')[n % 3]}, model {n}."
            for n in range(N_ITEMS)
        ],
        categories=[[CATEGORIES[category_of[n]]] for n in range(N_ITEMS)],
        attributes=[{"price": float(10 + n)} for n in range(N_ITEMS)],
    )
    return Dataset.from_arrays(subjects, items, types, values, stamps, content=content)


@pytest.fixture(scope="session")
def shop() -> Dataset:
    return make_dataset()
