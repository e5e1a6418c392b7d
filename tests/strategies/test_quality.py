"""Ranking quality of the core strategies on MovieLens-100k (slow: the full data set).

The protocol of the Microsoft Recommenders benchmark table: a stratified random
75/25 split per user, every rating is a relevant interaction, full ranking of
the items the user has not rated in training, NDCG@10. The official figures
come from ``benchmarks/`` through ``personalize.evaluation``; this test keeps
an independent, minimal implementation so a regression in a strategy shows up
here even if the harness changes.
"""

from __future__ import annotations

import numpy as np
import pytest

from personalize.dataset import Dataset
from personalize.strategies import History
from personalize.strategies.ease import EASE
from personalize.strategies.item_knn import ItemKNN
from personalize.strategies.popularity import Popularity

pytestmark = pytest.mark.slow
K = 10


def stratified(dataset, ratio=0.75, seed=42):
    """Bool mask over events: True for training. Pairs sorted by (subject, item)."""
    events = dataset.events
    keys = events.subject_idx.astype(np.int64) * dataset.n_items + events.item_idx
    pairs, inverse = np.unique(keys, return_inverse=True)
    subject = pairs // dataset.n_items
    draw = np.random.default_rng(seed).random(pairs.size)
    order = np.lexsort((draw, subject))
    starts = np.searchsorted(subject[order], subject[order], side="left")
    rank = np.empty(pairs.size, dtype=np.int64)
    rank[order] = np.arange(pairs.size) - starts
    n_train = np.rint(ratio * np.bincount(subject)).astype(np.int64)
    return (rank < n_train[subject])[inverse.ravel()]


def ndcg(strategy, train, test_sets):
    artifact = strategy.fit(train)
    discounts = 1.0 / np.log2(np.arange(2, K + 2))
    values = []
    for subject, relevant in test_sets.items():
        ranked = [item for item, _ in strategy.recommend(artifact, History.from_dataset(train, subject), K)]
        gains = np.array([item in relevant for item in ranked] + [False] * (K - len(ranked)))
        values.append((gains * discounts).sum() / discounts[: min(len(relevant), K)].sum())
    return float(np.mean(values))


@pytest.fixture(scope="module")
def movielens(data_dir):
    full = Dataset.from_file("ml100k", data_dir / "movielens-100k")
    mask = stratified(full)
    train = full.with_events(mask)
    test_sets: dict[int, set[int]] = {}
    held = full.events.subset(~mask)
    for subject, item in zip(full.subject_ids[held.subject_idx].tolist(),
                             full.item_ids[held.item_idx].tolist(), strict=True):
        test_sets.setdefault(subject, set()).add(item)
    return train, test_sets


def test_ndcg_at_10_on_movielens_100k(movielens):
    train, test_sets = movielens
    scores = {
        "popular": ndcg(Popularity(), train, test_sets),
        "item_knn": ndcg(ItemKNN(), train, test_sets),
        "ease": ndcg(EASE(), train, test_sets),
    }
    print(scores)
    assert 0.22 <= scores["popular"] <= 0.28
    assert scores["item_knn"] >= 0.42
    assert scores["ease"] >= 0.48
    assert scores["ease"] > scores["item_knn"] > scores["popular"]
