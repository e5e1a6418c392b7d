"""Synthetic shop events with a realistic long tail, shared by the benchmarks.

Item popularity follows a Zipf law (a few blockbusters, a long tail), subject
activity a log-normal (most visitors do little, a few do a lot), and each
subject has a taste: most of their events fall in one of ``clusters`` item
groups, so item-item models find real co-occurrence structure. Everything is
drawn with vectorised NumPy from one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EVENT_TYPES = ("view", "click", "add_to_cart", "purchase", "rating")
TYPE_SHARES = (0.70, 0.15, 0.05, 0.05, 0.05)
CATEGORIES = ("Books", "Garden", "Music", "Tools", "Toys", "Kitchen", "Sports", "Beauty")


@dataclass
class SyntheticEvents:
    subjects: np.ndarray  # int64 index 0..n_subjects-1
    items: np.ndarray  # int64 index 0..n_items-1
    types: np.ndarray  # int16 code into EVENT_TYPES
    values: np.ndarray  # float64 rating or NaN
    timestamps: np.ndarray  # float64 POSIX seconds

    def __len__(self) -> int:
        return len(self.subjects)


def _zipf_draw(rng: np.random.Generator, n: int, size: int, exponent: float) -> np.ndarray:
    """``size`` ranks in ``[0, n)`` with P(rank r) proportional to 1 / (r + 1) ** exponent."""
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    cumulative = np.cumsum(weights)
    cumulative /= cumulative[-1]
    return np.minimum(np.searchsorted(cumulative, rng.random(size)), n - 1)


def generate(
    n_events: int,
    n_subjects: int,
    n_items: int,
    *,
    seed: int = 0,
    zipf_exponent: float = 1.05,
    clusters: int = 50,
    in_taste: float = 0.7,
    days: float = 90.0,
    now: float = 1_735_689_600.0,  # 2025-01-01
    duplicate_share: float = 0.01,
) -> SyntheticEvents:
    """Draw ``n_events`` events (see the module docstring).

    ``duplicate_share`` of them are exact copies of others (a client that
    retried a send), which the snapshot must drop.
    """
    rng = np.random.default_rng(seed)
    n_copies = int(n_events * duplicate_share)
    n_events -= n_copies
    activity = rng.lognormal(mean=0.0, sigma=1.2, size=n_subjects)
    cumulative = np.cumsum(activity) / activity.sum()
    subjects = np.minimum(np.searchsorted(cumulative, rng.random(n_events)), n_subjects - 1)
    clusters = max(1, min(clusters, n_items))
    taste = rng.integers(0, clusters, size=n_subjects)
    # global draw: item index = popularity rank (item 0 is the blockbuster)
    items = _zipf_draw(rng, n_items, n_events, zipf_exponent)
    # taste draw: a Zipf rank inside the subject's cluster (items c, c + C, c + 2C, ...)
    local = rng.random(n_events) < in_taste
    per_cluster = n_items // clusters
    ranks = _zipf_draw(rng, per_cluster, int(local.sum()), zipf_exponent)
    items[local] = ranks * clusters + taste[subjects[local]]
    types = np.searchsorted(np.cumsum(TYPE_SHARES), rng.random(n_events) * 0.999999)
    values = np.where(types == EVENT_TYPES.index("rating"),
                      rng.integers(1, 6, size=n_events).astype(np.float64), np.nan)
    timestamps = now - rng.random(n_events) * days * 86_400.0
    copies = rng.integers(0, n_events, size=n_copies)
    order = np.concatenate([np.arange(n_events), copies])
    return SyntheticEvents(subjects[order].astype(np.int64), items[order].astype(np.int64),
                           types[order].astype(np.int16), values[order], timestamps[order])


def item_texts(n_items: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """A title-like text and one category per synthetic item."""
    rng = np.random.default_rng(seed + 1)
    adjectives = ("red", "small", "classic", "smart", "eco", "pro", "vintage", "light")
    nouns = ("lamp", "mug", "guide", "drill", "ball", "album", "kit", "pot", "brush")
    a = rng.integers(0, len(adjectives), n_items)
    b = rng.integers(0, len(nouns), n_items)
    pairs = enumerate(zip(a.tolist(), b.tolist(), strict=True))
    texts = [f"{adjectives[x]} {nouns[y]} no. {n}" for n, (x, y) in pairs]
    categories = [[CATEGORIES[n % len(CATEGORIES)]] for n in range(n_items)]
    return texts, categories
