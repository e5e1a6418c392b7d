"""Splitting protocols: what is held out, what trains, and that nothing leaks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from personalize.evaluation import splits
from tests.evaluation.factories import make_dataset, random_dataset


def pairs(matrix) -> set[tuple[int, int]]:
    coo = sp.coo_array(matrix)
    return set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


def event_pairs(events) -> set[tuple[int, int]]:
    return set(zip(events.subject_idx.tolist(), events.item_idx.tolist(), strict=True))


def all_pairs(dataset) -> set[tuple[int, int]]:
    rated = pairs(dataset.ratings) if dataset.ratings is not None else set()
    return pairs(dataset.interactions) | rated


def test_stratified_holds_out_round_ratio_of_each_subject_and_leaks_nothing():
    dataset = random_dataset(seed=1)
    split = splits.stratified_split(dataset, ratio=0.75, seed=3)
    train, test = pairs(split.train.interactions), pairs(split.test)
    assert not train & test
    assert train | test == all_pairs(dataset)  # every rated pair is relevant
    # no held-out pair survives anywhere in the training data
    assert not event_pairs(split.train.events) & test
    assert not pairs(split.train.ratings) & test
    per_subject = np.bincount(sp.coo_array(dataset.interactions).row, minlength=dataset.n_subjects)
    kept = np.bincount(sp.coo_array(split.train.interactions).row, minlength=dataset.n_subjects)
    assert kept.tolist() == np.rint(0.75 * per_subject).astype(int).tolist()
    # ids and shapes unchanged; train values are the original values
    assert split.train.item_ids is dataset.item_ids
    assert split.test.shape == dataset.interactions.shape
    for row, col in train:
        assert split.train.interactions[row, col] == dataset.interactions[row, col]
    assert split.params == {"ratio": 0.75, "seed": 3, "cold_subjects_dropped": 0}
    assert split.train.meta["split"]["protocol"] == "stratified"


def test_stratified_is_deterministic_per_seed():
    dataset = random_dataset(seed=2)
    a = splits.stratified_split(dataset, seed=5)
    b = splits.stratified_split(dataset, seed=5)
    c = splits.stratified_split(dataset, seed=6)
    assert pairs(a.test) == pairs(b.test)
    assert pairs(a.test) != pairs(c.test)


def test_held_out_ratings_are_the_held_out_pairs_ratings():
    dataset = random_dataset(seed=3)
    split = splits.stratified_split(dataset, seed=1)
    assert pairs(split.test_ratings) == pairs(split.test)
    for row, col in pairs(split.test_ratings):
        assert split.test_ratings[row, col] == dataset.ratings[row, col]


def test_pair_with_several_events_moves_as_a_whole():
    # subject 0 viewed item 1 three times; whichever side it lands on, all three go there
    events = [(0, 1, 1.0), (0, 1, 1.0), (0, 1, 1.0), (0, 2, 1.0), (0, 3, 1.0), (0, 4, 1.0)]
    dataset = make_dataset(events)
    for seed in range(10):
        split = splits.stratified_split(dataset, ratio=0.5, seed=seed)
        in_train = (split.train.events.item_idx == 1).sum()
        assert in_train in (0, 3)
        assert (split.test[0, 1] == 1) == (in_train == 0)


def test_negative_and_zero_pairs_are_held_out_but_not_relevant():
    # item 1 was disliked (weight -4): hiding it is fine, calling it relevant is not
    events = [(0, 0, 1.0), (0, 1, -4.0), (0, 2, 1.0), (0, 3, 1.0)]
    dataset = make_dataset(events)
    for seed in range(20):
        split = splits.stratified_split(dataset, ratio=0.5, seed=seed)
        if split.train.interactions[0, 1] == 0:  # held out
            assert split.test[0, 1] == 0
            assert split.test.nnz == 1
            return
    pytest.fail("item 1 was never held out")


def test_leave_last_n_by_time():
    events = [  # subject, item, weight, rating, time
        (0, 0, 1.0, np.nan, 10.0), (0, 1, 1.0, np.nan, 30.0), (0, 2, 1.0, np.nan, 20.0),
        (0, 0, 1.0, np.nan, 40.0),  # re-view of item 0: now the latest pair
        (1, 3, 1.0, np.nan, 5.0),  # one item only: not evaluated
        (2, 1, 1.0, np.nan, 1.0), (2, 2, 1.0, np.nan, 2.0), (2, 3, 1.0, np.nan, 3.0),
    ]
    split = splits.leave_last_n_split(make_dataset(events), n=1)
    assert pairs(split.test) == {(0, 0), (2, 3)}
    assert pairs(split.train.interactions) == {(0, 1), (0, 2), (1, 3), (2, 1), (2, 2)}
    split2 = splits.leave_last_n_split(make_dataset(events), n=2)
    assert pairs(split2.test) == {(0, 0), (0, 1), (2, 3), (2, 2)}


def test_leave_last_n_without_timestamps_uses_event_order():
    # Amazon histories: no timestamps, the log is in history order
    events = [(0, 4, 1.0), (0, 2, 1.0), (0, 3, 1.0), (1, 0, 1.0), (1, 1, 1.0)]
    split = splits.leave_last_n_split(make_dataset(events), n=1)
    assert pairs(split.test) == {(0, 3), (1, 1)}


def test_temporal_global_cut():
    events = [
        (0, 0, 1.0, 4.0, 1.0), (0, 1, 1.0, 5.0, 2.0), (1, 0, 1.0, 3.0, 3.0),
        (0, 2, 1.0, 2.0, 4.0), (1, 1, 1.0, 1.0, 5.0),
        (0, 0, 1.0, 1.0, 6.0),  # a later event on a pair seen before the cut: not held out
        (2, 3, 1.0, 5.0, 7.0),  # a subject with no history before the cut: dropped
        (1, 2, -4.0, np.nan, 8.0),  # a dislike after the cut: held out but not relevant
    ]
    dataset = make_dataset(events, with_ratings=True)
    split = splits.temporal_split(dataset, ratio=0.375)  # cut at the 4th event (t = 4)
    assert split.params["cut"] == 4.0
    assert np.all(split.train.events.timestamp < 4.0)
    assert pairs(split.train.interactions) == {(0, 0), (0, 1), (1, 0)}
    assert pairs(split.test) == {(0, 2), (1, 1)}
    assert split.params["cold_subjects_dropped"] == 1
    # training ratings are those before the cut, even where a later one exists
    assert split.train.ratings[0, 0] == 4.0
    assert pairs(split.test_ratings) == {(0, 2), (1, 1), (2, 3)}
    assert split.test_ratings[2, 3] == 5.0


def test_temporal_split_of_a_log_not_in_time_order():
    # the builder's log is in time order; one built by hand may not be
    events = [
        (0, 0, 1.0, 4.0, 1.0), (0, 0, 1.0, 2.0, 2.0), (1, 0, 1.0, 3.0, 3.0),
        (0, 2, 1.0, 2.0, 4.0), (1, 1, 1.0, 1.0, 5.0), (1, 1, 1.0, 5.0, 6.0),
    ]
    ordered = splits.temporal_split(make_dataset(events, with_ratings=True), ratio=0.5)
    shuffled = splits.temporal_split(
        make_dataset([events[n] for n in (5, 1, 3, 0, 4, 2)], with_ratings=True), ratio=0.5)
    assert shuffled.params == ordered.params
    for name in ("test", "test_ratings"):
        assert (getattr(shuffled, name) != getattr(ordered, name)).nnz == 0
    assert (shuffled.train.ratings != ordered.train.ratings).nnz == 0
    assert ordered.train.ratings[0, 0] == 2.0  # the latest rating before the cut
    assert shuffled.test_ratings[1, 1] == 5.0  # the latest after it


def test_temporal_needs_timestamps():
    with pytest.raises(ValueError, match="needs events with timestamps"):
        splits.temporal_split(make_dataset([(0, 0, 1.0), (0, 1, 1.0)]))


def test_temporal_training_matrix_sums_the_events_weights():
    # weights arrive already decayed by the builder; the split sums them as they are
    events = [(0, 0, 0.25, np.nan, 1.0), (0, 0, 0.5, np.nan, 2.0), (0, 1, 1.0, np.nan, 3.0),
              (0, 2, 1.0, np.nan, 4.0)]
    split = splits.temporal_split(make_dataset(events), ratio=0.5)  # cut at t = 3
    assert split.train.interactions[0, 0] == pytest.approx(0.75)
    assert pairs(split.train.interactions) == {(0, 0)}
    assert pairs(split.test) == {(0, 1), (0, 2)}


def test_kfold_parts_are_disjoint_balanced_and_cover_everything():
    dataset = random_dataset(seed=4)
    folds = splits.kfold_splits(dataset, folds=5, seed=0)
    assert len(folds) == 5
    held = [pairs(f.test_ratings) for f in folds]
    assert set().union(*held) == all_pairs(dataset)
    assert sum(len(h) for h in held) == len(all_pairs(dataset))
    sizes = [len(h) for h in held]
    assert max(sizes) - min(sizes) <= 1
    for fold in folds:
        assert not pairs(fold.train.interactions) & pairs(fold.test_ratings)
    assert [f.params["fold"] for f in folds] == [0, 1, 2, 3, 4]


def test_subject_with_no_training_data_is_dropped_from_ranking():
    # a single pair: stratified at ratio 0.25 keeps round(0.25) = 0 for training
    events = [(0, 0, 1.0), (0, 1, 1.0), (0, 2, 1.0), (0, 3, 1.0), (1, 0, 1.0)]
    split = splits.stratified_split(make_dataset(events), ratio=0.25, seed=0)
    assert split.test_subjects.tolist() == [0]
    assert split.params["cold_subjects_dropped"] == 1


def test_hold_out_items_hides_them_from_training_only():
    dataset = random_dataset(seed=5)
    split = splits.leave_last_n_split(dataset, n=1)
    cold = splits.hold_out_items(split, np.array([0, 3]))
    for part in (cold.train.interactions, cold.train.ratings):
        assert not {c for _, c in pairs(part)} & {0, 3}
    assert not set(cold.train.events.item_idx.tolist()) & {0, 3}
    assert pairs(cold.test) == pairs(split.test)
    assert cold.params["items_hidden"] == 2
    assert cold.train.item_texts == dataset.item_texts


def test_make_splits_dispatch_and_errors():
    dataset = random_dataset(seed=6)
    assert [s.protocol for s in splits.make_splits(dataset, "stratified")] == ["stratified"]
    assert len(splits.make_splits(dataset, "kfold", folds=3)) == 3
    assert splits.make_splits(dataset, "leave-last-n", n=2)[0].params["n"] == 2
    with pytest.raises(ValueError, match="Unknown protocol 'random'"):
        splits.make_splits(dataset, "random")
    with pytest.raises(ValueError, match="ratio must be between 0 and 1"):
        splits.stratified_split(dataset, ratio=1.0)
    with pytest.raises(ValueError, match="folds must be at least 2"):
        splits.kfold_splits(dataset, folds=1)
    with pytest.raises(ValueError, match="n must be at least 1"):
        splits.leave_last_n_split(dataset, n=0)


# --- dropped subjects and cold subjects ---------------------------------------

# s0: a b c (times 1 2 3); s1: a c (1 2); s2: a (5); s3: a, then a dislike of b (1 2);
# s4 is in the id map with no interaction at all.
COLD_EVENTS = [
    (0, 0, 1.0, np.nan, 1.0), (0, 1, 1.0, np.nan, 2.0), (0, 2, 1.0, np.nan, 3.0),
    (1, 0, 1.0, np.nan, 1.0), (1, 2, 1.0, np.nan, 2.0),
    (2, 0, 1.0, np.nan, 5.0),
    (3, 0, 1.0, np.nan, 1.0), (3, 1, -4.0, np.nan, 2.0),
]


def cold_dataset():
    return make_dataset(COLD_EVENTS, subject_ids=[100, 101, 102, 103, 104])


def test_leave_last_n_counts_dropped_subjects_by_reason():
    split = splits.leave_last_n_split(cold_dataset(), n=1)
    assert split.test_subjects.tolist() == [0, 1]
    assert split.dropped == {"no interactions": 1, "1 item or fewer": 1,
                             "no relevant held-out item (only dislikes)": 1}
    assert split.cold_subjects == 0
    assert splits.leave_last_n_split(cold_dataset(), n=2).dropped["2 items or fewer"] == 3


def test_leave_last_n_keeps_cold_subjects_with_their_items_as_the_target():
    split = splits.leave_last_n_split(cold_dataset(), n=1, keep_cold=True)
    assert split.test_subjects.tolist() == [0, 1, 2]
    assert pairs(split.test) == {(0, 2), (1, 2), (2, 0)}
    assert split.cold_subjects == 1
    assert split.dropped == {"no interactions": 1,
                             "no relevant held-out item (only dislikes)": 1}
    assert split.params["cold_subjects_dropped"] == 0
    assert not pairs(split.train.interactions) & pairs(split.test)


def test_temporal_names_the_period_a_dropped_subject_was_seen_in():
    # 8 events; ratio 0.5 cuts at the 5th smallest time (2.0): times 1 train, 2+ are held out
    dropped = splits.temporal_split(cold_dataset(), ratio=0.5)
    assert dropped.dropped == {"no interactions": 1, "only in the test period": 1,
                               "no relevant held-out item (only dislikes)": 1}
    assert dropped.test_subjects.tolist() == [0, 1]
    kept = splits.temporal_split(cold_dataset(), ratio=0.5, keep_cold=True)
    assert kept.test_subjects.tolist() == [0, 1, 2]
    assert kept.cold_subjects == 1
    late = splits.temporal_split(cold_dataset(), ratio=0.875)  # cut at 5: only s2 after it
    assert late.dropped["only in the training period"] == 3


def test_stratified_counts_subjects_too_short_to_split():
    split = splits.stratified_split(cold_dataset(), ratio=0.75, seed=0)
    # s1 keeps round(1.5) = 2 of 2, s2 round(0.75) = 1 of 1, s3 2 of 2; s0 holds out 1 of 3
    assert split.dropped == {"no interactions": 1, "too few items to hold one out": 3}
    assert split.test_subjects.tolist() == [0]


def test_make_splits_passes_keep_cold_to_the_time_protocols_only():
    dataset = cold_dataset()
    assert splits.make_splits(dataset, "leave-last-n", keep_cold=True)[0].cold_subjects == 1
    assert splits.make_splits(dataset, "stratified", keep_cold=True)[0].cold_subjects == 0
