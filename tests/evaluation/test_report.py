"""Report formatting: the text table and the JSON shape."""

from __future__ import annotations

import json

import pytest

from personalize.evaluation import report as report_module

REPORT = {
    "protocol": "stratified",
    "k": 10,
    "seed": 42,
    "results": [
        {"strategy": "ease", "precision@10": 0.41772, "ndcg@10": 0.48081, "rmse": None,
         "mae": None, "fit_seconds": 0.351, "recommend_ms": 0.1071, "subjects": 943,
         "cannot_recommend": 0},
        {"strategy": "svd", "precision@10": 0.1, "ndcg@10": 0.1, "rmse": 0.9412, "mae": 0.74,
         "fit_seconds": 3.0, "recommend_ms": 0.5, "subjects": 943, "cannot_recommend": 12},
        {"strategy": "text", "precision@10": None, "ndcg@10": None, "rmse": None, "mae": None,
         "skipped": "needs texts, which this dataset lacks"},
    ],
}


def test_table_has_a_row_per_strategy_and_notes():
    text = report_module.format_table(REPORT)
    lines = text.splitlines()
    assert lines[0] == "protocol: stratified   k: 10   seed: 42"
    header = lines[2].split()
    assert header == ["strategy", "prec@10", "ndcg@10", "rmse", "mae", "fit", "s", "rec", "ms",
                      "subjects"]
    assert lines[4].split() == ["ease", "0.4177", "0.4808", "-", "-", "0.35", "0.107", "943"]
    assert lines[5].split() == ["svd", "0.1000", "0.1000", "0.9412", "0.7400", "3.00", "0.500",
                                "943"]
    assert "text: skipped, needs texts, which this dataset lacks" in lines
    assert "svd: no recommendation for 12 of 943 subjects (counted as misses)" in lines


def test_json_is_exactly_the_report():
    assert json.loads(report_module.render(REPORT, "json")) == REPORT


def test_json_refuses_nan():
    with pytest.raises(ValueError, match="not JSON compliant"):
        report_module.to_json({**REPORT, "results": [{"strategy": "x", "ndcg@10": float("nan")}]})


def test_unknown_format():
    with pytest.raises(ValueError, match="Unknown report format 'xml'; choose one of table, json"):
        report_module.render(REPORT, "xml")


def bucket(subjects, ndcg):
    return {"subjects": subjects, "ndcg@10": ndcg}


FULL = {
    "protocol": "temporal", "k": 10, "seed": 42, "subjects": 363,
    "dropped": {"only in the training period": 580}, "cold_subjects": 235,
    "fallback": "popular", "resamples": 1000,
    "results": [
        {"strategy": "ease", "ndcg@10": 0.3629, "subjects": 363, "cannot_recommend": 0,
         "fallback": 235, "ci": {"ndcg@10": [0.3345, 0.3913]}, "best": True,
         "tied_with_best": False,
         "by_history": {"0": bucket(235, 0.4514), "1-2": bucket(1, 0.0), "3-5": bucket(0, None),
                        "6-20": bucket(8, 0.3613), "21+": bucket(119, 0.1913)}},
        {"strategy": "knn", "ndcg@10": 0.3549, "subjects": 363, "cannot_recommend": 235,
         "fallback": 235, "ci": {"ndcg@10": [0.3274, 0.3824]}, "best": False,
         "tied_with_best": True,
         "by_history": {"0": bucket(235, 0.4514), "1-2": bucket(1, 0.0), "3-5": bucket(0, None),
                        "6-20": bucket(8, 0.3326), "21+": bucket(119, 0.1689)}},
    ],
}


def test_table_shows_subjects_intervals_ties_and_history_buckets():
    lines = report_module.format_table(FULL).splitlines()
    assert lines[1] == "subjects evaluated: 363 (235 with no training history)"
    assert lines[2] == "subjects dropped: 580 (580 only in the training period)"
    assert lines[4].split() == ["strategy", "ndcg@10", "subjects", "vs", "best"]
    assert lines[6].split() == ["ease", "0.3629", "±0.0284", "363", "best"]
    assert lines[7].split() == ["knn", "0.3549", "±0.0275", "363", "tied"]
    start = lines.index("ndcg@10 by training-history length (items; subjects):")
    assert lines[start + 1].split() == ["strategy", "0", "(235)", "1-2", "(1)", "3-5", "(0)",
                                        "6-20", "(8)", "21+", "(119)"]
    assert lines[start + 3].split() == ["ease", "0.4514", "0.0000", "-", "0.3613", "0.1913"]
    assert "ease: an empty list for 235 of 363 subjects, who got the popular fallback" in lines
    assert "knn: no recommendation for 235 of 363 subjects; 235 of them got the popular " \
           "fallback" in lines


def test_json_of_the_full_report_is_exactly_the_report():
    assert json.loads(report_module.render(FULL, "json")) == FULL
