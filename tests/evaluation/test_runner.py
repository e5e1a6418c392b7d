"""The evaluation runner, end to end, with fake strategies defined in tests/evaluation/factories."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from personalize.dataset import Dataset
from personalize.evaluation import metrics, runner
from personalize.evaluation.splits import Split, kfold_splits, stratified_split
from personalize.strategies.base import CannotRecommend
from personalize.strategies.history import History
from tests.evaluation.factories import (
    FakeBroken,
    FakeHistoryOnly,
    FakeNeedsTexts,
    FakePopular,
    FakeRating,
    make_dataset,
    random_dataset,
)


def tiny_split() -> Split:
    """Train: s0 {0, 1}, s1 {0, 2}, s2 {0, 1}, s3 {3}; held out: s0 {2}, s1 {1}, s3 {4}.

    Popularity 0: 3, 1: 2, 2: 1, 3: 1, 4: 0; with k = 2 the popular lists are
    s0 [2, 3] (hit at 1), s1 [1, 3] (hit at 1), s3 [0, 1] (miss); s2 has nothing held out.
    """
    train = make_dataset(
        [(0, 0, 1.0, np.nan, 1.0), (0, 1, 1.0, np.nan, 2.0), (1, 2, 1.0, 5.0, 3.0),
         (1, 0, 1.0, 4.0, 4.0), (2, 0, 1.0, np.nan, 5.0), (2, 1, 1.0, np.nan, 6.0),
         (3, 3, 1.0, np.nan, 7.0)],
        item_ids=["a", "b", "c", "d", "e"],
    )
    test = sp.csr_array((np.ones(3), ([0, 1, 3], [2, 1, 4])), shape=(4, 5))
    return Split(protocol="custom", train=train, test=test)


def result_of(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in report["results"] if entry["strategy"] == name)


def test_figures_of_a_hand_checked_split():
    report = runner.evaluate_splits({"pop": FakePopular()}, [tiny_split()], k=2, seed=1)
    assert report["protocol"] == "custom"
    entry = result_of(report, "pop")
    assert entry["ndcg@2"] == pytest.approx(2 / 3)
    assert entry["precision@2"] == pytest.approx(1 / 3)
    assert entry["recall@2"] == pytest.approx(2 / 3)
    assert entry["map@2"] == pytest.approx(2 / 3)
    assert entry["hit_rate@2"] == pytest.approx(2 / 3)
    assert entry["mrr@2"] == pytest.approx(2 / 3)
    assert entry["coverage@2"] == pytest.approx(4 / 5)
    # 4 training subjects; novelty of c, d (1/4 each) = 2 bits, b (2/4) 1 bit, a (3/4)
    bits = {0: -math.log2(3 / 4), 1: 1.0, 2: 2.0, 3: 2.0}
    expected = np.mean([(bits[2] + bits[3]) / 2, (bits[1] + bits[3]) / 2, (bits[0] + bits[1]) / 2])
    assert entry["novelty@2"] == pytest.approx(expected)
    assert entry["subjects"] == 3
    assert entry["cannot_recommend"] == 0
    assert entry["rmse"] is None and entry["mae"] is None
    assert entry["diversity@2"] is None  # no categories, no vectors
    assert entry["fit_seconds"] >= 0


class Recorder(FakePopular):
    seen: ClassVar[list[History]] = []

    def recommend(self, artifact, history, k, exclude=()):
        Recorder.seen.append(history)
        return super().recommend(artifact, history, k, exclude)


def test_strategies_get_the_training_history_oldest_first():
    Recorder.seen = []
    runner.evaluate_splits({"rec": Recorder()}, [tiny_split()], k=2)
    by_subject = {h.subject_id: h for h in Recorder.seen}
    assert set(by_subject) == {100, 101, 103}  # subjects with something held out
    assert by_subject[101].item_ids == ["c", "a"]
    assert by_subject[101].timestamps == [3.0, 4.0]
    assert by_subject[101].ratings == {"c": 5.0, "a": 4.0}
    assert by_subject[100].item_ids == ["a", "b"]
    assert by_subject[103].item_ids == ["d"]


def test_history_leaves_out_zero_weight_events_but_keeps_ratings():
    Recorder.seen = []
    train = make_dataset([(0, 0, 0.0, np.nan, 1.0), (0, 1, 0.0, 3.0, 2.0),
                          (0, 2, 2.0, np.nan, 3.0)])
    test = sp.csr_array((np.ones(1), ([0], [3])), shape=(1, 4))
    runner.evaluate_splits({"rec": Recorder()}, [Split("custom", train, test)], k=2)
    (history,) = Recorder.seen
    assert history.item_ids == [1001, 1002]
    assert list(history.weights) == [1.0, 2.0]  # a rating event counts as weight 1


def test_cannot_recommend_is_counted_and_scores_zero_without_a_fallback():
    report = runner.evaluate_splits({"short": FakeHistoryOnly(), "pop": FakePopular()},
                                    [tiny_split()], k=2, fallback=None)
    assert report["fallback"] is None
    short, pop = result_of(report, "short"), result_of(report, "pop")
    assert short["cannot_recommend"] == 1  # s3 has a single history item
    assert short["ndcg@2"] == pytest.approx(pop["ndcg@2"])  # s3 missed anyway
    assert short["coverage@2"] == pytest.approx(3 / 5)  # s3's [a, b] is gone: {b, c, d}


def test_rating_models_get_rmse_and_mae_over_every_fold():
    dataset = random_dataset(seed=11)
    folds = kfold_splits(dataset, folds=3, seed=2)
    report = runner.evaluate_splits({"rating": FakeRating(), "pop": FakePopular()}, folds, k=5,
                                    protocol="kfold")
    expected_rmse, expected_mae = [], []
    for split in folds:
        train = split.train.ratings
        test = sp.coo_array(split.test_ratings)
        global_mean = train.data.mean()
        predicted = []
        for row in test.row:
            start, end = train.indptr[row], train.indptr[row + 1]
            predicted.append(train.data[start:end].mean() if end > start else global_mean)
        expected_rmse.append(metrics.rmse(predicted, test.data))
        expected_mae.append(metrics.mae(predicted, test.data))
    rating = result_of(report, "rating")
    assert rating["rmse"] == pytest.approx(np.mean(expected_rmse))
    assert rating["mae"] == pytest.approx(np.mean(expected_mae))
    assert rating["folds"] == 3
    assert result_of(report, "pop")["rmse"] is None


def test_missing_data_skips_the_strategy_with_a_reason():
    report = runner.evaluate({"texts": FakeNeedsTexts(), "pop": FakePopular()},
                             random_dataset(seed=3), "stratified", k=5)
    texts = result_of(report, "texts")
    assert texts["skipped"] == "needs texts, which this dataset lacks"
    assert texts["ndcg@5"] is None
    assert result_of(report, "pop")["ndcg@5"] is not None


def test_report_shape():
    report = runner.evaluate({"pop": FakePopular()}, random_dataset(seed=4), "stratified",
                             k=10, seed=7)
    assert list(report) == ["protocol", "k", "seed", "subjects", "dropped", "cold_subjects",
                            "fallback", "resamples", "results"]
    assert (report["protocol"], report["k"], report["seed"]) == ("stratified", 10, 7)
    (entry,) = report["results"]
    assert list(entry)[:1] == ["strategy"]
    for key in runner.metric_keys(10):
        assert key in entry
    assert 0.0 <= entry["ndcg@10"] <= 1.0


@pytest.mark.parametrize(("protocol", "options"), [
    ("temporal", {"ratio": 0.8}), ("leave-last-n", {"n": 2}), ("kfold", {"folds": 2}),
])
def test_every_protocol_runs_end_to_end(protocol, options):
    report = runner.evaluate({"pop": FakePopular()}, random_dataset(seed=5), protocol, k=5,
                             **options)
    entry = report["results"][0]
    assert report["protocol"] == protocol
    assert entry["subjects"] > 0
    assert 0.0 <= entry["hit_rate@5"] <= 1.0


def test_same_seed_same_report():
    dataset = random_dataset(seed=6)
    one = runner.evaluate({"pop": FakePopular()}, dataset, seed=3)
    two = runner.evaluate({"pop": FakePopular()}, dataset, seed=3)
    for key in runner.metric_keys(10):
        assert one["results"][0][key] == two["results"][0][key]
    assert one["results"][0]["ci"] == two["results"][0]["ci"]  # seeded resamples


def test_max_subjects_samples():
    report = runner.evaluate({"pop": FakePopular()}, random_dataset(seed=7), max_subjects=5)
    assert report["results"][0]["subjects"] == 5


def test_progress_bar_sees_every_subject():
    calls = []

    class Bar:
        def __init__(self, total, desc, unit):
            self.total, self.desc, self.done = total, desc, 0
            calls.append(self)

        def update(self, n=1):
            self.done += n

        def close(self):
            self.closed = True

    runner.evaluate({"pop": FakePopular(), "short": FakeHistoryOnly()},
                    random_dataset(n_subjects=150, seed=8), progress=Bar)
    assert [c.desc for c in calls] == ["pop", "short"]
    assert all(c.done == c.total > 100 and c.closed for c in calls)


def test_diversity_uses_categories_or_given_vectors():
    split = tiny_split()
    split.train.item_categories = [["x"], ["x"], ["y"], ["y"], ["z"]]
    report = runner.evaluate_splits({"pop": FakePopular()}, [split], k=2)
    # lists [c, d] (y, y) -> 0, [b, d] -> 1, [a, b] -> 0
    assert result_of(report, "pop")["diversity@2"] == pytest.approx(1 / 3)
    vectors = np.eye(5)
    report = runner.evaluate_splits({"pop": FakePopular()}, [split], k=2, item_vectors=vectors)
    assert result_of(report, "pop")["diversity@2"] == pytest.approx(1.0)


class Repeater(FakePopular):
    def recommend(self, artifact, history, k, exclude=()):
        first = super().recommend(artifact, history, k, exclude)[0]
        return [first, first]


def test_a_strategy_repeating_an_item_fails_alone():
    report = runner.evaluate_splits({"rep": Repeater(), "pop": FakePopular()},
                                    [tiny_split()], k=2)
    rep = result_of(report, "rep")
    assert rep["failed"] == "ValueError: Strategy 'rep' returned the same item twice in one list."
    assert rep["ndcg@2"] is None
    assert result_of(report, "pop")["ndcg@2"] is not None


def test_a_raising_strategy_is_reported_and_the_others_still_run(caplog):
    folds = kfold_splits(random_dataset(seed=12), folds=2, seed=1)
    report = runner.evaluate_splits({"broken": FakeBroken(), "pop": FakePopular()}, folds, k=5)
    broken = result_of(report, "broken")
    assert broken["failed"] == "OverflowError: cannot convert float infinity to integer"
    assert all(broken[key] is None for key in runner.metric_keys(5))
    assert result_of(report, "pop")["ndcg@5"] > 0
    assert "Evaluating strategy 'broken' failed." in caplog.text


def test_popularity_on_movielens_100k_lands_near_a_quarter(data_dir):
    """The sanity check of the metric code on the Microsoft Recommenders protocol."""
    dataset = Dataset.from_file("ml100k", data_dir / "movielens-100k" / "u.data")
    split = stratified_split(dataset, ratio=0.75, seed=42)
    assert split.test.nnz == 100_000 - split.train.interactions.nnz
    report = runner.evaluate_splits({"pop": FakePopular()}, [split], k=10)
    entry = report["results"][0]
    assert entry["subjects"] == 943
    assert entry["ndcg@10"] == pytest.approx(0.25, abs=0.015)
    assert entry["precision@10"] == pytest.approx(0.23, abs=0.02)


def test_rank_gives_per_subject_lists_and_reuses_an_artifact():
    split = tiny_split()
    first = runner.rank(FakePopular(), split, k=2)
    assert first.subjects.tolist() == [0, 1, 3]
    assert first.recs.tolist() == [[2, 3], [1, 3], [0, 1]]
    assert first.hits.tolist() == [[True, False], [True, False], [False, False]]
    again = runner.rank(FakePopular(), split, k=2, artifact=first.artifact)
    assert again.fit_seconds == 0.0
    assert again.recs.tolist() == first.recs.tolist()


def test_string_ids_in_object_arrays():
    Recorder.seen = []
    train = make_dataset([(0, 0, 1.0), (0, 1, 1.0), (1, 1, 1.0)],
                         subject_ids=np.array(["ann", "bob"], dtype=object),
                         item_ids=np.array(["x", "y", "z"], dtype=object))
    test = sp.csr_array((np.ones(2), ([0, 1], [2, 0])), shape=(2, 3))
    report = runner.evaluate_splits({"rec": Recorder()}, [Split("custom", train, test)], k=1)
    assert [h.subject_id for h in Recorder.seen] == ["ann", "bob"]
    assert report["results"][0]["hit_rate@1"] == pytest.approx(1.0)


# --- the truth about a site: nothing to test, cold subjects, history, noise ---------


def test_nothing_testable_is_an_error_that_says_why_and_what_to_try():
    one_each = make_dataset([(0, 0, 1.0), (1, 1, 1.0), (2, 0, 1.0)])
    with pytest.raises(runner.NothingToEvaluate) as caught:
        runner.evaluate({"pop": FakePopular()}, one_each, "stratified")
    message = str(caught.value)
    assert "under the stratified protocol no subject has a held-out item" in message
    assert "all 3 subjects were dropped (3 too few items to hold one out)" in message
    assert "try a lower --ratio" in message
    with pytest.raises(runner.NothingToEvaluate, match=r"1 item or fewer.*smaller --n"):
        runner.evaluate({"pop": FakePopular()}, one_each, "leave-last-n", keep_cold=False)


def newcomer_dataset():
    """s0: a b c; s1: a c; s2: a (times in that order). Leave-last-1 with cold subjects:

    held out s0 {c}, s1 {c}, s2 {a}; training s0 {a, b}, s1 {a}, s2 {} (popularity a 2, b 1).
    FakeHistoryOnly answers s0 (c: hit at 1) and refuses s1 and s2; the popular fallback
    gives s1 [b] (miss) and s2 [a] (hit).
    """
    return make_dataset([(0, 0, 1.0, np.nan, 1.0), (0, 1, 1.0, np.nan, 2.0),
                         (0, 2, 1.0, np.nan, 3.0), (1, 0, 1.0, np.nan, 1.0),
                         (1, 2, 1.0, np.nan, 2.0), (2, 0, 1.0, np.nan, 5.0)])


def test_cold_subjects_are_kept_and_served_the_popular_fallback():
    report = runner.evaluate({"short": FakeHistoryOnly()}, newcomer_dataset(), "leave-last-n",
                             k=1, resamples=0)
    assert (report["subjects"], report["cold_subjects"], report["dropped"]) == (3, 1, {})
    assert report["fallback"] == "popular"
    entry = result_of(report, "short")
    assert entry["ndcg@1"] == pytest.approx(2 / 3)
    assert (entry["cannot_recommend"], entry["fallback"]) == (2, 2)
    assert entry["by_history"]["0"] == pytest.approx(
        {"subjects": 1, "precision@1": 1.0, "recall@1": 1.0, "ndcg@1": 1.0, "map@1": 1.0,
         "hit_rate@1": 1.0, "mrr@1": 1.0})
    assert entry["by_history"]["1-2"]["subjects"] == 2
    assert entry["by_history"]["1-2"]["ndcg@1"] == pytest.approx(0.5)
    assert entry["by_history"]["21+"] == {"subjects": 0, **dict.fromkeys(
        [f"{m}@1" for m in metrics.RANKING_METRICS])}
    assert "ci" not in entry  # resamples=0: no intervals


def test_without_fallback_or_cold_subjects_as_before():
    dataset = newcomer_dataset()
    bare = runner.evaluate({"short": FakeHistoryOnly()}, dataset, "leave-last-n", k=1,
                           fallback=None, resamples=0)
    assert result_of(bare, "short")["ndcg@1"] == pytest.approx(1 / 3)
    assert result_of(bare, "short")["fallback"] == 0
    warm = runner.evaluate({"short": FakeHistoryOnly()}, dataset, "leave-last-n", k=1,
                           keep_cold=False, resamples=0)
    assert (warm["subjects"], warm["dropped"]) == (2, {"1 item or fewer": 1})
    assert result_of(warm, "short")["ndcg@1"] == pytest.approx(1 / 2)


def test_intervals_and_ties_with_the_best():
    dataset = random_dataset(n_subjects=120, seed=8)
    report = runner.evaluate({"pop": FakePopular(), "pop_again": FakePopular(),
                              "nothing": FakeBroken()}, dataset, resamples=200, fallback=None)
    pop, again = result_of(report, "pop"), result_of(report, "pop_again")
    assert report["resamples"] == 200
    low, high = pop["ci"]["ndcg@10"]
    assert low < pop["ndcg@10"] < high
    assert set(pop["ci"]) == {f"{m}@10" for m in metrics.RANKING_METRICS}
    assert (pop["best"], pop["tied_with_best"]) == (True, False)
    assert (again["best"], again["tied_with_best"]) == (False, True)  # the same lists
    assert "ci" not in result_of(report, "nothing")  # failed: no interval


class FakeSilent(FakePopular):
    """Recommends nothing to anyone."""

    def recommend(self, artifact, history, k, exclude=()):
        return []


def test_a_clearly_worse_strategy_is_not_tied():
    report = runner.evaluate({"silent": FakeSilent(), "pop": FakePopular()},
                             random_dataset(n_subjects=200, seed=9), resamples=300,
                             fallback=None)
    worse = result_of(report, "silent")
    assert worse["ndcg@10"] == 0.0 < result_of(report, "pop")["ndcg@10"]
    assert (worse["best"], worse["tied_with_best"]) == (False, False)
    assert result_of(report, "pop")["best"]


def test_kfold_intervals_average_the_folds():
    report = runner.evaluate({"pop": FakePopular()}, random_dataset(seed=10), "kfold", folds=3,
                             resamples=100)
    entry = result_of(report, "pop")
    low, high = entry["ci"]["ndcg@10"]
    assert low <= entry["ndcg@10"] <= high
    assert sum(cell["subjects"] for cell in entry["by_history"].values()) == pytest.approx(
        report["subjects"], abs=2)


class FakeUntrainable(FakePopular):
    def fit(self, dataset):
        raise CannotRecommend("nothing to learn from")


def test_a_fallback_that_cannot_train_leaves_the_lists_empty(caplog):
    report = runner.evaluate({"short": FakeHistoryOnly()}, newcomer_dataset(), "leave-last-n",
                             k=1, resamples=0, fallback=FakeUntrainable())
    assert report["fallback"] == "FakeUntrainable"
    entry = result_of(report, "short")
    assert (entry["fallback"], entry["ndcg@1"]) == (0, pytest.approx(1 / 3))
    assert "cannot train on this split" in caplog.text


def test_cold_subjects_counts_the_evaluated_ones():
    report = runner.evaluate({"pop": FakePopular()}, newcomer_dataset(), "leave-last-n", k=1,
                             resamples=0, max_subjects=2, seed=0)
    entry = result_of(report, "pop")
    assert report["subjects"] == 2
    assert report["cold_subjects"] == entry["by_history"]["0"]["subjects"]
