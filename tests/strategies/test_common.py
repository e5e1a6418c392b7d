"""The shared helpers: id lookups, history vectors, masking."""

from __future__ import annotations

import numpy as np

from personalize.strategies.artifacts import Artifact
from personalize.strategies.common import (
    history_vector,
    mask_columns,
    positions,
    ranked,
)
from personalize.strategies.history import History


def art(ids):
    return Artifact(arrays={"item_ids": np.asarray(ids)})


def test_positions_on_sorted_integer_ids():
    artifact = art([3, 5, 9])
    columns, found = positions(artifact, [9, 4, 3, "5"])
    assert columns.tolist() == [2, 0, 1]
    assert found.tolist() == [True, False, True, True]


def test_ids_before_the_first_or_past_the_last_are_unknown():
    columns, found = positions(art([3, 5, 9]), [10, 1, 9, 99])
    assert columns.tolist() == [2]
    assert found.tolist() == [False, False, True, False]
    columns, found = positions(art([7]), [8, 7, 6])
    assert columns.tolist() == [0]
    assert found.tolist() == [False, True, False]


def test_positions_on_string_ids_and_unsorted_ids():
    columns, found = positions(art(["a", "c"]), ["c", "b", 7])
    assert columns.tolist() == [1]
    assert found.tolist() == [True, False, False]
    columns, found = positions(art([9, 3, 5]), [5, 9, None])
    assert columns.tolist() == [2, 0]
    assert found.tolist() == [True, True, False]


def test_positions_of_an_array_equal_those_of_its_list():
    for ids, query in [([3, 5, 9], [9, 4, 3, 5]), ([9, 3, 5], [5, 9, 4])]:
        expected = positions(art(ids), query)
        columns, found = positions(art(ids), np.asarray(query))
        assert columns.tolist() == expected[0].tolist()
        assert found.tolist() == expected[1].tolist()


def test_positions_of_nothing():
    assert positions(art([1]), [])[0].size == 0
    assert positions(art([1]), np.empty(0, dtype=np.int64))[0].size == 0
    assert positions(art([]), [1])[1].tolist() == [False]


def test_history_vector_sums_repeats_or_sets_ones():
    artifact = art([1, 2, 3])
    history = History(item_ids=[1, 3, 1, 8], weights=[1.0, 2.0, 4.0, 9.0])
    vector, columns = history_vector(artifact, history, 3)
    assert vector.tolist() == [5.0, 0.0, 2.0]
    assert columns.tolist() == [0, 2]
    vector, _ = history_vector(artifact, history, 3, binary=True)
    assert vector.tolist() == [1.0, 0.0, 1.0]


def test_mask_and_rank():
    artifact = art([1, 2, 3, 4])
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    mask_columns(scores, artifact, History(item_ids=[1]), [3, 99])
    assert ranked(artifact, scores, 10) == [(2, 3.0), (4, 1.0)]


