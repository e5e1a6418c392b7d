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
