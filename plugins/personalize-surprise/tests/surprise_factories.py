"""Fixtures for the Surprise plugin tests: small rating snapshots built from the dataclass."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from personalize.conf import personalize_settings
from personalize.dataset import Dataset, EventLog


def dataset_from_triples(users, items, ratings, *, explicit: bool = True) -> Dataset:
    """A Dataset snapshot from (user id, item id, rating) triples (ids kept as given)."""
    users = np.asarray(users)
    items = np.asarray(items)
    ratings = np.asarray(ratings, dtype=np.float32)
    subject_ids, rows = np.unique(users, return_inverse=True)
    item_ids, cols = np.unique(items, return_inverse=True)
    shape = (len(subject_ids), len(item_ids))
    matrix = sp.csr_array((ratings, (rows, cols)), shape=shape)
    binary = sp.csr_array((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    events = EventLog(
        subject_idx=rows.astype(np.int32), item_idx=cols.astype(np.int32),
        weight=np.ones(len(rows), dtype=np.float32) if explicit else ratings,
        rating=ratings if explicit else np.full(len(rows), np.nan, dtype=np.float32),
        timestamp=np.zeros(len(rows)), event_type=np.zeros(len(rows), dtype=np.int16),
    )
    return Dataset(
        subject_ids=subject_ids, item_ids=item_ids,
        interactions=binary if explicit else matrix, events=events,
        event_types=["rating"] if explicit else ["view"],
        ratings=matrix if explicit else None,
        item_titles=[f"item {i}" for i in item_ids], item_texts=["" for _ in item_ids],
        item_categories=[[] for _ in item_ids], item_attributes=[{} for _ in item_ids],
    )


def random_triples(n_users: int = 40, n_items: int = 30, density: float = 0.3, seed: int = 7):
    """Ratings 1..5 with some structure (user taste x item quality), ids as ints."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # no empty user
    taste = rng.normal(size=(n_users, 3))
    traits = rng.normal(size=(n_items, 3))
    raw = 3 + taste @ traits.T * 0.8 + rng.normal(scale=0.5, size=mask.shape)
    values = np.clip(np.rint(raw), 1, 5)
    u, i = np.nonzero(mask)
    return (u + 100).tolist(), (i + 1000).tolist(), values[u, i].tolist()


@pytest.fixture(scope="session")
def triples():
    return random_triples()


@pytest.fixture(scope="session")
def small_dataset(triples) -> Dataset:
    return dataset_from_triples(*triples)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("PERSONALIZE_DATA_DIR") or personalize_settings.DATA_DIR)
    if not path.is_dir():
        pytest.fail(f"Data directory {path} is missing; set PERSONALIZE_DATA_DIR.")
    return path
