"""Upserting partial artifacts into a live one, keyed by item ids."""

from __future__ import annotations

import numpy as np

from personalize.strategies.artifacts import Artifact
from personalize.training.embedding import empty_like, upsert_rows


def _live() -> Artifact:
    return Artifact(arrays={
        "item_ids": np.array([10, 20, 30]),
        "vectors": np.arange(6, dtype=np.float32).reshape(3, 2),
        "text_hashes": np.array([1, 2, 3], dtype=np.uint64),
        "hnsw_index": np.zeros(7, dtype=np.uint8),  # derived, not item-indexed
        "scale": np.array([2.0]),
    }, meta={"model": "m"})


def test_empty_like_keeps_everything_but_item_rows():
    part = empty_like(_live())
    assert part["item_ids"].shape == (0,) and part["vectors"].shape == (0, 2)
    assert part["hnsw_index"].shape == (7,) and part["scale"].tolist() == [2.0]
    assert part.meta == {"model": "m"}


def test_upsert_replaces_known_rows_and_appends_new_ones():
    base = _live()
    part = empty_like(base)
    part.arrays.update(item_ids=np.array([20, 40]),
                       vectors=np.array([[9, 9], [7, 7]], dtype=np.float32),
                       text_hashes=np.array([22, 44], dtype=np.uint64))
    base.index_of("item_ids")

    assert upsert_rows(base, part) == 2

    assert base["item_ids"].tolist() == [10, 20, 30, 40]
    assert base["vectors"].tolist() == [[0, 1], [9, 9], [4, 5], [7, 7]]
    assert base["text_hashes"].tolist() == [1, 22, 3, 44]
    assert base.index_of("item_ids")[40] == 3  # derived caches were rebuilt
    assert "hnsw_index" in base  # the part kept it: still valid


def test_a_derived_array_the_plugin_dropped_is_dropped_and_missing_rows_are_zero():
    base = _live()
    part = empty_like(base)
    del part.arrays["hnsw_index"]
    del part.arrays["text_hashes"]
    part.arrays.update(item_ids=np.array([50]), vectors=np.ones((1, 2), dtype=np.float32))

    upsert_rows(base, part)

    assert "hnsw_index" not in base and base["scale"].tolist() == [2.0]
    assert base["text_hashes"].tolist() == [1, 2, 3, 0]


def test_an_empty_part_changes_nothing():
    base = _live()
    assert upsert_rows(base, empty_like(base)) == 0
    assert base["item_ids"].tolist() == [10, 20, 30] and "hnsw_index" in base
