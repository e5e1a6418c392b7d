"""Metric code checked by hand-computed cases and against a loop-by-loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from personalize.evaluation import metrics

# ---------------------------------------------------------------- hand cases
# Three subjects over six items, k = 3.
#   subject 0: list [0, 1, 2], relevant {1, 5}  -> hit at rank 2 only
#   subject 1: list [3, 4, -], relevant {3}     -> hit at rank 1, list one short
#   subject 2: list [5, 0, 1], relevant {}      -> no relevant item: left out
RECS = np.array([[0, 1, 2], [3, 4, -1], [5, 0, 1]])
RELEVANT = sp.csr_array(
    (np.ones(3), ([0, 0, 1], [1, 5, 3])), shape=(3, 6)
)
L3 = math.log2(3)


def test_hits_matrix():
    assert metrics.hits(RECS, RELEVANT, 3).tolist() == [
        [False, True, False], [True, False, False], [False, False, False]
    ]


def test_padding_never_matches_the_previous_subjects_last_item():
    # key of (row 1, item -1) equals key of (row 0, item n-1) in a naive encoding
    relevant = sp.csr_array((np.ones(1), ([0], [5])), shape=(2, 6))
    assert not metrics.hits(np.array([[0], [-1]]), relevant, 1).any()


def test_per_subject_values_by_hand():
    per = metrics.ranking_metrics_per_subject(RECS, RELEVANT, 3)
    assert per["precision"] == pytest.approx([1 / 3, 1 / 3])
    assert per["recall"] == pytest.approx([1 / 2, 1.0])
    assert per["ndcg"] == pytest.approx([(1 / L3) / (1 + 1 / L3), 1.0])
    assert per["map"] == pytest.approx([(1 / 2) / 2, 1.0])
    assert per["hit_rate"] == pytest.approx([1.0, 1.0])
    assert per["mrr"] == pytest.approx([1 / 2, 1.0])


@pytest.mark.parametrize(("fn", "expected"), [
    (metrics.precision_at_k, 1 / 3),
    (metrics.recall_at_k, 0.75),
    (metrics.ndcg_at_k, ((1 / L3) / (1 + 1 / L3) + 1) / 2),
    (metrics.map_at_k, 0.625),
    (metrics.hit_rate_at_k, 1.0),
    (metrics.mrr_at_k, 0.75),
])
def test_means_by_hand(fn, expected):
    assert fn(RECS, RELEVANT, 3) == pytest.approx(expected)


def test_cutoff_shorter_than_the_list():
    # at k = 1 subject 0 misses and subject 1 hits
    got = metrics.ranking_metrics(RECS, RELEVANT, 1)
    assert got == pytest.approx({"precision": 0.5, "recall": 0.5, "ndcg": 0.5, "map": 0.5,
                                 "hit_rate": 0.5, "mrr": 0.5})


def test_map_and_ndcg_normalise_by_min_relevant_k():
    # five relevant items, k = 2, both slots hit: a perfect list
    relevant = sp.csr_array((np.ones(5), ([0] * 5, [0, 1, 2, 3, 4])), shape=(1, 6))
    got = metrics.ranking_metrics(np.array([[3, 1]]), relevant, 2)
    assert got["map"] == pytest.approx(1.0)
    assert got["ndcg"] == pytest.approx(1.0)
    assert got["recall"] == pytest.approx(2 / 5)


def test_map_textbook_example():
    # hits at ranks 1 and 3 of 4 with 2 relevant: (1/1 + 2/3) / 2
    relevant = sp.csr_array((np.ones(2), ([0, 0], [7, 9])), shape=(1, 10))
    assert metrics.map_at_k(np.array([[7, 1, 9, 2]]), relevant, 4) == pytest.approx((1 + 2 / 3) / 2)


def test_empty_list_scores_zero_and_no_relevant_gives_nan():
    relevant = sp.csr_array((np.ones(1), ([0], [2])), shape=(1, 4))
    got = metrics.ranking_metrics(np.array([[-1, -1]]), relevant, 2)
    assert got == dict.fromkeys(metrics.RANKING_METRICS, 0.0)
    nothing = sp.csr_array((1, 4))
    assert all(math.isnan(v) for v in metrics.ranking_metrics(np.array([[0]]), nothing, 1).values())


def test_non_positive_relevance_values_do_not_count():
    relevant = sp.csr_array((np.array([0.0, -1.0, 1.0]), ([0, 0, 0], [0, 1, 2])), shape=(1, 4))
    assert metrics.hits(np.array([[0, 1, 2]]), relevant, 3).tolist() == [[False, False, True]]
    assert metrics.relevant_counts(relevant).tolist() == [1]


def test_input_errors():
    with pytest.raises(ValueError, match="repeats an item"):
        metrics.hits(np.array([[1, 2, 1]]), RELEVANT[:1], 3)
    with pytest.raises(ValueError, match="same subjects"):
        metrics.hits(RECS, RELEVANT[:2], 3)
    with pytest.raises(ValueError, match="integer"):
        metrics.hits(RECS.astype(float), RELEVANT, 3)
    with pytest.raises(ValueError, match="item index 9"):
        metrics.hits(np.array([[9], [0], [0]]), RELEVANT, 1)
    with pytest.raises(ValueError, match="at least 1"):
        metrics.hits(RECS, RELEVANT, 0)


def test_catalog_coverage_by_hand():
    assert metrics.catalog_coverage(RECS, 6, 3) == pytest.approx(6 / 6)
    assert metrics.catalog_coverage(RECS, 6, 2) == pytest.approx(5 / 6)  # {0, 1, 3, 4, 5}
    assert metrics.catalog_coverage(RECS, 12, 1) == pytest.approx(3 / 12)


def test_diversity_from_categories_by_hand():
    categories = [["a"], ["a"], ["b"], ["a", "b"], [], ["c", "c"]]
    # subject 0: (0,1) same -> 0, (0,2) and (1,2) disjoint -> 1: mean 2/3
    # subject 1: item 4 has no category -> no valid pair -> left out
    # subject 2: (5,0) 1, (5,1) 1, (0,1) 0 -> 2/3
    assert metrics.intra_list_diversity(RECS, 3, item_categories=categories) == pytest.approx(2 / 3)
    # item 3 = {a, b} against item 0 = {a}: cosine 1/sqrt(2)
    got = metrics.intra_list_diversity(np.array([[3, 0]]), 2, item_categories=categories)
    assert got == pytest.approx(1 - 1 / math.sqrt(2))


def test_diversity_from_vectors_by_hand():
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    # pairs: (0,1) cos 0 -> 1; (0,2) cos -1 -> 2; (1,2) cos 0 -> 1: mean 4/3
    assert metrics.intra_list_diversity(np.array([[0, 1, 2]]), 3,
                                        item_vectors=vectors) == pytest.approx(4 / 3)
    sparse = metrics.intra_list_diversity(np.array([[0, 1, 2]]), 3,
                                          item_vectors=sp.csr_array(vectors))
    assert sparse == pytest.approx(4 / 3)
    assert math.isnan(metrics.intra_list_diversity(np.array([[0, -1]]), 2, item_vectors=vectors))
    with pytest.raises(ValueError, match="needs item_vectors or item_categories"):
        metrics.intra_list_diversity(RECS, 3)


def test_novelty_by_hand():
    popularity = np.array([4, 2, 1, 0, 4, 4])  # of 4 subjects
    # subject 0: items 0, 1, 2 -> 0, 1, 2 bits; subject 1: 3 (never seen: once -> 2), 4 (0)
    # subject 2: 5, 0, 1 -> 0, 0, 1
    expected = np.mean([3 / 3, 2 / 2, 1 / 3])
    assert metrics.novelty(RECS, popularity, 4, 3) == pytest.approx(expected)


def test_rmse_mae_by_hand():
    assert metrics.rmse([1, 2, 3], [1, 3, 5]) == pytest.approx(math.sqrt(5 / 3))
    assert metrics.mae([1, 2, 3], [1, 3, 5]) == pytest.approx(1.0)
    assert math.isnan(metrics.rmse([], []))
    with pytest.raises(ValueError, match="2 predictions for 3 ratings"):
        metrics.mae([1, 2], [1, 2, 3])


# ------------------------------------------- an independent reference, in loops
# Written from the textbook definitions, one subject and one position at a time,
# with Python lists and sets only: deliberately nothing shared with the NumPy code.


def reference_metrics(lists, relevant_sets, k):
    sums = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0, "hit_rate": 0.0, "mrr": 0.0}
    counted = 0
    for ranked, relevant in zip(lists, relevant_sets, strict=True):
        if not relevant:
            continue
        counted += 1
        ranked = list(ranked[:k])
        found = 0
        dcg = 0.0
        precision_sum = 0.0
        first = None
        for position, item in enumerate(ranked, start=1):
            if item != -1 and item in relevant:
                found += 1
                dcg += 1.0 / math.log2(position + 1)
                precision_sum += found / position
                if first is None:
                    first = position
        ideal = 0.0
        for position in range(1, min(len(relevant), k) + 1):
            ideal += 1.0 / math.log2(position + 1)
        sums["precision"] += found / k
        sums["recall"] += found / len(relevant)
        sums["ndcg"] += dcg / ideal
        sums["map"] += precision_sum / min(len(relevant), k)
        sums["hit_rate"] += 1.0 if found else 0.0
        sums["mrr"] += 1.0 / first if first else 0.0
    return {name: total / counted for name, total in sums.items()} if counted else None


def reference_coverage(lists, n_items, k):
    seen = set()
    for ranked in lists:
        for item in ranked[:k]:
            if item != -1:
                seen.add(item)
    return len(seen) / n_items


def reference_diversity(lists, vectors, k):
    per_list = []
    for ranked in lists:
        items = [item for item in ranked[:k] if item != -1 and any(x != 0 for x in vectors[item])]
        distances = []
        for a in range(len(items)):
            for b in range(a + 1, len(items)):
                u, v = vectors[items[a]], vectors[items[b]]
                dot = sum(x * y for x, y in zip(u, v, strict=True))
                norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
                distances.append(1.0 - dot / norm)
        if distances:
            per_list.append(sum(distances) / len(distances))
    return sum(per_list) / len(per_list) if per_list else None


def reference_novelty(lists, popularity, n_subjects, k):
    per_list = []
    for ranked in lists:
        bits = [-math.log2(max(popularity[item], 1) / n_subjects)
                for item in ranked[:k] if item != -1]
        if bits:
            per_list.append(sum(bits) / len(bits))
    return sum(per_list) / len(per_list)


def random_case(rng, n_subjects, n_items, width):
    lists, relevant_sets = [], []
    for _ in range(n_subjects):
        length = int(rng.integers(0, width + 1))
        ranked = rng.permutation(n_items)[:length].tolist()
        lists.append(ranked + [-1] * (width - len(ranked)))
        relevant_sets.append(set(rng.choice(n_items, size=int(rng.integers(0, n_items // 2 + 1)),
                                            replace=False).tolist()))
    rows = [s for s, rel in enumerate(relevant_sets) for _ in rel]
    cols = [item for rel in relevant_sets for item in rel]
    relevant = sp.csr_array((np.ones(len(cols)), (rows, cols)), shape=(n_subjects, n_items))
    return lists, relevant_sets, relevant


@pytest.mark.parametrize("seed", range(25))
def test_ranking_metrics_match_the_reference_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(3, 40))
    width = int(rng.integers(1, min(n_items, 15) + 1))
    k = int(rng.integers(1, width + 3))
    lists, relevant_sets, relevant = random_case(rng, int(rng.integers(1, 30)), n_items, width)
    expected = reference_metrics(lists, relevant_sets, k)
    got = metrics.ranking_metrics(np.array(lists), relevant, k)
    if expected is None:
        assert all(math.isnan(v) for v in got.values())
    else:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert metrics.catalog_coverage(np.array(lists), n_items, k) == pytest.approx(
        reference_coverage(lists, n_items, k))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_items=st.integers(2, 12),
    n_subjects=st.integers(1, 8),
)
def test_ranking_metrics_match_the_reference_hypothesis(data, n_items, n_subjects):
    width = data.draw(st.integers(1, n_items))
    k = data.draw(st.integers(1, width + 2))
    lists, relevant_sets = [], []
    for _ in range(n_subjects):
        ranked = data.draw(st.lists(st.integers(0, n_items - 1), max_size=width, unique=True))
        lists.append(ranked + [-1] * (width - len(ranked)))
        relevant_sets.append(data.draw(st.sets(st.integers(0, n_items - 1))))
    rows = [s for s, rel in enumerate(relevant_sets) for _ in rel]
    cols = [item for rel in relevant_sets for item in rel]
    relevant = sp.csr_array((np.ones(len(cols)), (rows, cols)), shape=(n_subjects, n_items))
    expected = reference_metrics(lists, relevant_sets, k)
    got = metrics.ranking_metrics(np.array(lists), relevant, k)
    if expected is None:
        assert all(math.isnan(v) for v in got.values())
    else:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_beyond_accuracy_match_the_reference_on_random_data(seed):
    rng = np.random.default_rng(100 + seed)
    n_items, width = 25, 6
    lists, _, _ = random_case(rng, 20, n_items, width)
    vectors = rng.normal(size=(n_items, 4))
    vectors[rng.choice(n_items, 3, replace=False)] = 0.0  # featureless items are skipped
    k = int(rng.integers(1, width + 1))
    expected = reference_diversity(lists, vectors.tolist(), k)
    got = metrics.intra_list_diversity(np.array(lists), k, item_vectors=vectors)
    if expected is None:
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-9)
    popularity = rng.integers(0, 30, n_items)
    if any(item != -1 for ranked in lists for item in ranked[:k]):
        assert metrics.novelty(np.array(lists), popularity, 30, k) == pytest.approx(
            reference_novelty(lists, popularity.tolist(), 30, k))


def test_diversity_from_categories_matches_the_reference():
    rng = np.random.default_rng(7)
    names = ["a", "b", "c", "d", "e"]
    categories = [sorted(set(rng.choice(names, size=int(rng.integers(0, 4))).tolist()))
                  for _ in range(30)]
    lists, _, _ = random_case(rng, 40, 30, 8)
    vectors = [[1.0 if name in cats else 0.0 for name in names] for cats in categories]
    expected = reference_diversity(lists, vectors, 8)
    got = metrics.intra_list_diversity(np.array(lists), 8, item_categories=categories)
    assert got == pytest.approx(expected, rel=1e-9)


def test_rmse_mae_match_the_reference():
    rng = np.random.default_rng(3)
    predicted, actual = rng.uniform(1, 5, 200), rng.integers(1, 6, 200).astype(float)
    squared = absolute = 0.0
    for p, a in zip(predicted.tolist(), actual.tolist(), strict=True):
        squared += (p - a) ** 2
        absolute += abs(p - a)
    assert metrics.rmse(predicted, actual) == pytest.approx(math.sqrt(squared / 200))
    assert metrics.mae(predicted, actual) == pytest.approx(absolute / 200)
