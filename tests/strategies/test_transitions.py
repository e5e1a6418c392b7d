"""Transitions: time-ordered pairs within a window, normalisation, recency-weighted scoring."""

from __future__ import annotations

import numpy as np
import pytest

from personalize.dataset import Dataset
from personalize.strategies.base import CannotRecommend
from personalize.strategies.history import History
from personalize.strategies.transitions import Transitions

#: Exact counts, no normalisation, no reverse pairs, unit event weights.
PLAIN = {"backward": 0.0, "alpha": 0.0, "source_alpha": 0.0, "binary": True}


@pytest.fixture
def sequences():
    # s1: 1 -> 2 -> 3     s2: 1 -> 2     s3: 2 -> 4   (one event per second, in that order)
    pairs = [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (3, 2), (3, 4)]
    return Dataset.from_arrays([s for s, _ in pairs], [i for _, i in pairs], "view",
                               timestamps=list(range(1, len(pairs) + 1)))


def table(artifact) -> np.ndarray:
    """The transition matrix as a dense array indexed by item id - 1."""
    return np.asarray(artifact.get_csr("transitions").toarray())


def test_next_event_counts(sequences):
    matrix = table(Transitions(window=1, **PLAIN).fit(sequences))
    expected = np.zeros((4, 4))
    expected[0, 1] = 2  # 1 -> 2 twice
    expected[1, 2] = 1  # 2 -> 3
    expected[1, 3] = 1  # 2 -> 4
    assert matrix.tolist() == expected.tolist()


def test_a_wider_window_adds_decayed_pairs(sequences):
    matrix = table(Transitions(window=2, distance_decay=0.5, **PLAIN).fit(sequences))
    assert matrix[0, 2] == pytest.approx(0.5)  # 1 .. 3, two events apart
    assert matrix[0, 1] == pytest.approx(2.0)


def test_reverse_pairs_count_backward_times(sequences):
    options = {**PLAIN, "backward": 0.25}
    matrix = table(Transitions(window=1, **options).fit(sequences))
    assert matrix[1, 0] == pytest.approx(0.5)  # 2 after 1, twice, read backwards
    assert matrix[0, 1] == pytest.approx(2.0)


def test_normalised_by_the_popularity_of_both_ends(sequences):
    options = {**PLAIN, "alpha": 1.0, "source_alpha": 0.5}
    matrix = table(Transitions(window=1, **options).fit(sequences))
    # events: item 1 twice, item 2 three times, items 3 and 4 once
    assert matrix[0, 1] == pytest.approx(2 / (2 ** 0.5 * 3))
    assert matrix[1, 2] == pytest.approx(1 / (3 ** 0.5 * 1))


def test_event_weights_and_repeats():
    # a view then a purchase (weight 8) of the next item; the repeated view is one event
    dataset = Dataset.from_arrays([1, 1, 1], [1, 1, 2], ["view", "view", "purchase"],
                                  timestamps=[1, 2, 3])
    matrix = table(Transitions(window=3, **{**PLAIN, "binary": False}).fit(dataset))
    assert matrix[0, 1] == pytest.approx(8.0)
    assert matrix[0, 0] == 0.0


def test_each_item_keeps_its_top_successors(sequences):
    matrix = table(Transitions(window=2, distance_decay=0.5, top_n=1, **PLAIN).fit(sequences))
    assert np.flatnonzero(matrix[0]).tolist() == [1]  # 1 -> 2 (2.0) beats 1 -> 3 (0.5)
    assert (np.count_nonzero(matrix, axis=1) <= 1).all()


def test_old_pairs_fade_with_time_half_life():
    day = 86_400.0
    # 1 -> 2 two days before the snapshot's last event, 1 -> 3 at the end
    dataset = Dataset.from_arrays([1, 1, 2, 2], [1, 2, 1, 3], "view",
                                  timestamps=[day, day, 3 * day, 3 * day])
    matrix = table(Transitions(window=1, time_half_life_days=1.0, **PLAIN).fit(dataset))
    assert matrix[0, 1] == pytest.approx(0.25)
    assert matrix[0, 2] == pytest.approx(1.0)


def test_the_last_items_weigh_most(sequences):
    strategy = Transitions(window=2, distance_decay=0.5, history_decay=0.5, **PLAIN)
    artifact = strategy.fit(sequences)
    # history 2 then 1: weights 0.5 and 1
    # item 3: 0.5 * T[2,3] + 1 * T[1,3] = 0.5 + 0.5; item 4: 0.5 * T[2,4] = 0.5
    assert strategy.recommend(artifact, History(item_ids=[2, 1]), 5) == [(3, 1.0), (4, 0.5)]
    assert strategy.recommend(artifact, History(item_ids=[1]), 5) == [(2, 2.0), (3, 0.5)]
    # a repeated item counts at its latest position
    assert strategy.recommend(artifact, History(item_ids=[1, 2, 1]), 5) == [(3, 1.0), (4, 0.5)]


def test_explain_names_the_recent_item_that_led(sequences):
    strategy = Transitions(window=2, distance_decay=0.5, history_decay=0.8, **PLAIN)
    artifact = strategy.fit(sequences)
    history = History(item_ids=[2, 1])
    # item 3: from 2, 0.8 * 1; from 1, 1 * 0.5
    assert strategy.explain(artifact, history, 3) == 2
    assert strategy.explain(artifact, history, 4) == 2
    assert strategy.explain_many(artifact, history, [3, 99, 1]) == [2, None, None]


def test_similar_reads_the_successors(sequences):
    strategy = Transitions(window=2, distance_decay=0.5, **PLAIN)
    artifact = strategy.fit(sequences)
    assert strategy.similar(artifact, 1, 5) == [(2, 2.0), (3, 0.5)]
    assert strategy.similar(artifact, 1, 5, exclude=[2]) == [(3, 0.5)]
    with pytest.raises(CannotRecommend):
        strategy.similar(artifact, 99, 5)


@pytest.mark.parametrize("history", [History(), History(item_ids=[98, 99])])
def test_nothing_known_cannot_recommend(sequences, history):
    strategy = Transitions()
    artifact = strategy.fit(sequences)
    with pytest.raises(CannotRecommend):
        strategy.recommend(artifact, history, 5)
    assert strategy.recommend_many(artifact, [history], 5) == [None]


def test_an_item_nobody_followed_gives_a_short_list(sequences):
    strategy = Transitions(**{**PLAIN, "backward": 0.0})
    artifact = strategy.fit(sequences)
    assert strategy.recommend(artifact, History(item_ids=[4]), 5) == []


def test_a_dataset_of_single_events_fits_an_empty_table():
    dataset = Dataset.from_arrays([1, 2], [1, 2], "view", timestamps=[1, 2])
    strategy = Transitions()
    artifact = strategy.fit(dataset)
    assert artifact.get_csr("transitions").nnz == 0
    assert strategy.recommend(artifact, History(item_ids=[1]), 5) == []


@pytest.mark.parametrize(("options", "message"), [
    ({"window": 0}, "window"),
    ({"window": 2.5}, "window"),
    ({"top_n": 0}, "top_n"),
    ({"distance_decay": 0.0}, "distance_decay"),
    ({"history_decay": 1.5}, "history_decay"),
    ({"backward": -0.1}, "backward"),
    ({"alpha": 3.0}, "alpha"),
    ({"source_alpha": -1}, "source_alpha"),
    ({"history_half_life_days": 0}, "history_half_life_days"),
    ({"time_half_life_days": -2.0}, "time_half_life_days"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        Transitions(**options)


def test_a_training_split_with_no_kept_event_fits_an_empty_table(sequences):
    # a split can leave the training part without any event
    empty = sequences.with_events(np.zeros(len(sequences.events), dtype=bool))
    strategy = Transitions()
    artifact = strategy.fit(empty)
    assert artifact.get_csr("transitions").nnz == 0
    assert strategy.recommend(artifact, History(item_ids=[1]), 5) == []
