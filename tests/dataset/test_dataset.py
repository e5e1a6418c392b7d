"""The training snapshot: weights, filters, decay, id maps, content, and the DB path."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import override_settings

from personalize.dataset import Dataset
from personalize.dataset.raw import ItemContent
from personalize.strategies import History

DAY = 86_400.0


def personalize(**overrides):
    from django.conf import settings

    return override_settings(PERSONALIZE={**settings.PERSONALIZE, **overrides})


def dense(matrix):
    return np.asarray(matrix.toarray())


def flag_subject_two(subject_ids, counts):
    """A SNAPSHOT_BOT_FILTER hook: flags subject 2."""
    return subject_ids == 2


# --- the pipeline, from arrays -------------------------------------------------


def test_weights_per_event_type_are_summed_per_pair():
    ds = Dataset.from_arrays([1, 1, 1, 2], [10, 10, 20, 20], ["view", "purchase", "click", "like"],
                             timestamps=[1, 2, 3, 4])
    assert ds.subject_ids.tolist() == [1, 2]
    assert ds.item_ids.tolist() == [10, 20]
    assert dense(ds.interactions).tolist() == [[9.0, 2.0], [0.0, 4.0]]
    assert ds.interactions.dtype == np.float32
    assert ds.ratings is None
    assert sorted(ds.event_types) == ["click", "like", "purchase", "view"]


def test_ratings_are_kept_apart_and_count_as_one_interaction():
    ds = Dataset.from_arrays([1, 1, 2], [10, 20, 10], ["rating", "rating", "view"],
                             values=[4.0, 2.5, None], timestamps=[1, 2, 3])
    assert dense(ds.ratings).tolist() == [[4.0, 2.5], [0.0, 0.0]]
    assert dense(ds.interactions).tolist() == [[1.0, 1.0], [1.0, 0.0]]


def test_rating_weight_is_configurable():
    with personalize(RATING_WEIGHT=0.5):
        ds = Dataset.from_arrays([1], [10], ["rating"], values=[5.0], timestamps=[1])
    assert dense(ds.interactions).tolist() == [[0.5]]


def test_the_latest_rating_wins():
    ds = Dataset.from_arrays([1, 1, 1], [10, 10, 10], "rating", values=[2.0, 5.0, 3.0],
                             timestamps=[10, 30, 20])
    assert dense(ds.ratings).tolist() == [[5.0]]


def test_a_rating_without_a_value_is_dropped():
    ds = Dataset.from_arrays([1, 2], [10, 10], "rating", values=[None, 4.0], timestamps=[1, 2])
    assert ds.subject_ids.tolist() == [2]


def test_non_preference_and_unknown_types_are_left_out():
    ds = Dataset.from_arrays([1, 1, 1], [10, 20, 30], ["impression", "view", "teleport"],
                             timestamps=[1, 2, 3])
    assert ds.item_ids.tolist() == [20]
    assert ds.meta["n_unknown_type"] == 1
    assert ds.meta["n_type_filtered"] == 2


def test_negative_weights_are_kept():
    ds = Dataset.from_arrays([1, 1], [10, 10], ["view", "dislike"], timestamps=[1, 2])
    assert dense(ds.interactions).tolist() == [[-3.0]]


def test_event_types_filter():
    ds = Dataset.from_arrays([1, 1], [10, 20], ["view", "purchase"], timestamps=[1, 2],
                             event_types=["purchase"])
    assert ds.item_ids.tolist() == [20]
    with pytest.raises(ValueError, match="Unknown event type 'teleport'"):
        Dataset.from_arrays([1], [10], "view", event_types=["teleport"])


def test_custom_event_weights():
    ds = Dataset.from_arrays([1, 1], [10, 20], ["wish", "view"], timestamps=[1, 2],
                             event_weights={"wish": 3.0, "view": 1.0})
    assert dense(ds.interactions).tolist() == [[3.0, 1.0]]


def test_exact_duplicates_are_dropped_but_repeats_are_kept():
    ds = Dataset.from_arrays([1, 1, 1], [10, 10, 10], "view", timestamps=[5, 5, 6])
    assert ds.meta["n_duplicates"] == 1
    assert len(ds.events) == 2
    assert dense(ds.interactions).tolist() == [[2.0]]


def test_of_exact_duplicates_the_first_read_is_kept():
    ds = Dataset.from_arrays([1, 1, 1, 2], [10, 10, 10, 10], "rating", values=[2.0, 5.0, 3.0, 4.0],
                             timestamps=[7, 7, 7, 7])
    assert ds.meta["n_duplicates"] == 2
    assert dense(ds.ratings).tolist() == [[2.0], [4.0]]


@pytest.mark.parametrize("bound", [50, 2**62])  # packed sort, and the fallback
def test_stable_order_is_a_stable_argsort(bound):
    from personalize.dataset.keys import stable_order as _stable_order

    keys = np.random.default_rng(0).integers(0, 50, 5000)
    assert _stable_order(keys, bound).tolist() == np.argsort(keys, kind="stable").tolist()
    assert _stable_order(keys[:1], bound).tolist() == [0]


@pytest.mark.parametrize("shape", ["shuffled", "nearly sorted", "constant"])
def test_time_order_is_a_stable_argsort(shape):
    from personalize.dataset.keys import time_order as _time_order

    rng = np.random.default_rng(1)
    times = np.sort(rng.integers(0, 300, 4000).astype(np.float64) * 0.5)
    if shape == "shuffled":
        times = rng.permutation(times)
    elif shape == "nearly sorted":
        times[::97] += 3.0
    else:
        times[:] = 0.0
    assert _time_order(times).tolist() == np.argsort(times, kind="stable").tolist()


def test_matrices_can_leave_out_pairs_that_sum_to_zero():
    from personalize.dataset.pipeline import pair_matrices as _matrices

    ds = Dataset.from_arrays([1, 1, 2], [10, 20, 20], ["like", "view", "view"],
                             timestamps=[1, 2, 3], event_weights={"like": 1.0, "view": 1.0})
    ds.events.weight[:] = [1.0, 0.0, -1.0]  # the (1, 20) pair sums to 0
    kept, _ = _matrices(ds.events, ds.n_subjects, ds.n_items)
    dropped, _ = _matrices(ds.events, ds.n_subjects, ds.n_items, drop_zeros=True)
    assert kept.nnz == 3 and dropped.nnz == 2
    assert dense(kept).tolist() == dense(dropped).tolist() == [[1.0, 0.0], [0.0, -1.0]]


def test_excluded_subjects_are_dropped():
    ds = Dataset.from_arrays([1, 2, 3], [10, 10, 20], "view", timestamps=[1, 2, 3],
                             exclude_subjects=[2])
    assert ds.subject_ids.tolist() == [1, 3]
    assert ds.meta["n_bot_subjects"] == 1


def test_hyperactive_subjects_are_treated_as_bots():
    subjects = [1] * 5 + [2]
    with personalize(SNAPSHOT_MAX_SUBJECT_EVENTS=4):
        ds = Dataset.from_arrays(subjects, [10, 11, 12, 13, 14, 10], "view",
                                 timestamps=list(range(6)))
    assert ds.subject_ids.tolist() == [2]
    assert ds.meta["n_bot_events"] == 5


def test_bot_filter_hook():
    with personalize(SNAPSHOT_BOT_FILTER=f"{__name__}.flag_subject_two"):
        ds = Dataset.from_arrays([1, 2, 3], [10, 10, 20], "view", timestamps=[1, 2, 3])
    assert ds.subject_ids.tolist() == [1, 3]


def test_bot_filter_hook_must_return_one_flag_per_subject():
    with personalize(SNAPSHOT_BOT_FILTER=lambda ids, counts: np.array([True])), \
            pytest.raises(ValueError, match="one bool per subject"):
        Dataset.from_arrays([1, 2], [10, 10], "view", timestamps=[1, 2])


def test_minimum_item_support():
    # item 30 has one subject: dropped; then subject 3 has nothing left
    ds = Dataset.from_arrays([1, 2, 1, 2, 3], [10, 10, 20, 20, 30], "view",
                             timestamps=[1, 2, 3, 4, 5], min_item_support=2)
    assert ds.item_ids.tolist() == [10, 20]
    assert ds.subject_ids.tolist() == [1, 2]
    assert ds.meta["n_support_filtered"] == 1


def test_minimum_support_is_applied_until_it_holds():
    # subject 3 has two items; item 30 only them. With min subject 2 and min item 2:
    # item 30 goes (1 subject), so subject 3 falls to one item and goes too.
    subjects = [1, 1, 2, 2, 3, 3]
    items = [10, 20, 10, 20, 20, 30]
    with personalize(MIN_ITEM_SUPPORT=2, MIN_SUBJECT_SUPPORT=2):
        ds = Dataset.from_arrays(subjects, items, "view", timestamps=list(range(6)))
    assert ds.subject_ids.tolist() == [1, 2]
    assert ds.item_ids.tolist() == [10, 20]


def test_time_decay_halves_weight_per_half_life():
    now = 1_700_000_000.0
    ds = Dataset.from_arrays([1, 1], [10, 20], "view", timestamps=[now - 2 * DAY, now],
                             half_life_days=2.0)
    assert np.allclose(dense(ds.interactions), [[0.5, 1.0]])
    assert ds.meta["reference_time"] == now


def test_time_decay_from_settings():
    now = 1_700_000_000.0
    with personalize(TIME_DECAY_HALF_LIFE_DAYS=1.0):
        ds = Dataset.from_arrays([1, 1], [10, 20], "view", timestamps=[now - 2 * DAY, now])
    assert np.allclose(dense(ds.interactions), [[0.25, 1.0]])


def test_event_log_is_in_time_order_and_indexes_the_maps():
    ds = Dataset.from_arrays(["b", "a", "b"], ["y", "x", "x"], "view", timestamps=[30, 10, 20])
    assert ds.subject_ids.tolist() == ["a", "b"]
    log = ds.events
    assert log.timestamp.tolist() == [10, 20, 30]
    assert ds.subject_ids[log.subject_idx].tolist() == ["a", "b", "b"]
    assert ds.item_ids[log.item_idx].tolist() == ["x", "x", "y"]
    assert log.subject_idx.dtype == np.int32 and log.event_type.dtype == np.int16


def test_catalog_items_without_events_get_empty_columns():
    content = ItemContent(ids=np.array([10, 20, 30, 40]), titles=["a", "b", "c", "d"],
                          texts=["ta", "", "tc", "td"],
                          categories=[["x"], ["y"], [], ["x"]],
                          attributes=[{}, {"p": 1}, {}, {}],
                          available=np.array([True, True, True, False]))
    ds = Dataset.from_arrays([1], [20], "view", timestamps=[1], content=content)
    # 40 is unavailable and has no events: not a column
    assert ds.item_ids.tolist() == [10, 20, 30]
    assert ds.interactions.shape == (1, 3)
    assert ds.item_titles == ["a", "b", "c"]
    assert ds.item_texts == ["ta", "b", "tc"]  # an empty text falls back to the title
    assert ds.item_categories == [["x"], ["y"], []]
    assert ds.item_attributes[1] == {"p": 1}
    only_events = Dataset.from_arrays([1], [20], "view", timestamps=[1], content=content,
                                      include_catalog=False)
    assert only_events.item_ids.tolist() == [20]
    assert only_events.item_titles == ["b"]


def test_with_events_keeps_the_id_maps():
    ds = Dataset.from_arrays([1, 1, 2], [10, 20, 20], ["view", "rating", "view"],
                             values=[None, 4.0, None], timestamps=[1, 2, 3])
    part = ds.with_events(ds.events.timestamp < 2.5)
    assert part.item_ids is ds.item_ids
    assert part.interactions.shape == ds.interactions.shape
    assert dense(part.interactions).tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert dense(part.ratings).tolist() == [[0.0, 4.0], [0.0, 0.0]]


def test_history_of_a_subject():
    ds = Dataset.from_arrays([1, 1, 2], [20, 10, 10], ["rating", "view", "view"],
                             values=[4.0, None, None], timestamps=[5, 3, 4])
    history = History.from_dataset(ds, 1)
    assert history.item_ids == [10, 20]
    assert history.weights == [1.0, 1.0]
    assert history.timestamps == [3.0, 5.0]
    assert history.ratings == {20: 4.0}
    assert len(History.from_dataset(ds, 99)) == 0


def test_empty_input():
    ds = Dataset.from_arrays([], [], "view")
    assert ds.n_subjects == 0 and ds.n_items == 0
    assert ds.interactions.shape == (0, 0)


def test_catalog_ids_of_another_type_are_compared_as_strings():
    content = ItemContent(ids=np.array(["10", "long-id-30"]), titles=["ten", "thirty"])
    ds = Dataset.from_arrays([1], [10], "view", timestamps=[1], content=content)
    assert ds.item_ids.tolist() == ["10", "long-id-30"]
    assert ds.item_titles == ["ten", "thirty"]
    assert ds.item_ids[ds.events.item_idx].tolist() == ["10"]


def test_content_is_aligned_by_id_with_gaps_and_repeats():
    content = ItemContent(
        ids=np.array([30, 10, 99, 10]),
        titles=["thirty", "ten", "unknown", "ten again"],
        texts=["", "about ten", "x", ""],
        categories=[["c"], ["a", "b"], ["z"], ["b"]],
        attributes=[{"k": 3}, {"k": 1}, {}, {"k": 2}],
        available=np.array([True, True, True, False]),
    )
    ds = Dataset.from_arrays([1, 1, 2], [10, 20, 30], "view", timestamps=[1, 2, 3],
                             content=content, include_catalog=False)
    assert ds.item_ids.tolist() == [10, 20, 30]
    # 10 is read twice: the later row wins; 20 has no row; 99 has no column
    assert ds.item_titles == ["ten again", "", "thirty"]
    assert ds.item_texts == ["ten again", "", "thirty"]  # an empty text falls back to the title
    assert ds.item_categories == [["b"], [], ["c"]]
    assert ds.item_attributes == [{"k": 2}, {}, {"k": 3}]
    assert ds.item_available.tolist() == [False, True, True]
    # the dataset's lists are its own
    ds.item_categories[0].append("new")
    ds.item_attributes[2]["new"] = True
    assert content.categories[3] == ["b"] and content.attributes[0] == {"k": 3}
