"""Results by training-history length."""

from __future__ import annotations

import numpy as np

from personalize.evaluation import breakdown
from tests.evaluation.factories import make_dataset


def test_history_lengths_count_distinct_items_rated_or_interacted():
    # s0: item 0 twice and item 1; s1: a rating-only pair (weight 0); s2: nothing
    dataset = make_dataset([(0, 0, 1.0), (0, 0, 1.0), (0, 1, 1.0), (1, 2, 0.0, 4.0, 1.0)],
                           subject_ids=[7, 8, 9], with_ratings=True)
    assert breakdown.history_lengths(dataset, np.array([0, 1, 2])).tolist() == [2, 1, 0]
    assert breakdown.history_lengths(dataset, np.array([2, 0])).tolist() == [0, 2]


def test_buckets():
    lengths = np.array([0, 1, 2, 3, 5, 6, 20, 21, 500])
    assert breakdown.bucket_of(lengths).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_by_history_means_and_counts_per_bucket():
    values = {"ndcg": np.array([1.0, 0.0, 0.5, 0.25, 0.75]),
              "hit_rate": np.array([1.0, 0.0, 1.0, 1.0, 1.0])}
    lengths = np.array([0, 0, 4, 30, 30])
    table = breakdown.by_history(values, lengths, k=10)
    assert list(table) == ["0", "1-2", "3-5", "6-20", "21+"]
    assert table["0"] == {"subjects": 2, "ndcg@10": 0.5, "hit_rate@10": 0.5}
    assert table["1-2"] == {"subjects": 0, "ndcg@10": None, "hit_rate@10": None}
    assert table["3-5"] == {"subjects": 1, "ndcg@10": 0.5, "hit_rate@10": 1.0}
    assert table["21+"] == {"subjects": 2, "ndcg@10": 0.5, "hit_rate@10": 1.0}
    # pooled over 2 folds: counts are per fold
    assert breakdown.by_history(values, lengths, k=10, runs=2)["0"]["subjects"] == 1
