"""Every Surprise strategy passes the strategy contract that core ships."""

from __future__ import annotations

import pytest

pytest.importorskip("personalize_surprise", reason="the personalize-surprise plugin is not installed")

from personalize_surprise import NMF, SVD, BaselineOnly, KNNBaseline, SlopeOne, SVDpp

from personalize.evaluation.runner import evaluate
from personalize.testing import StrategyContractTests, sparse_shop


class TestSVD(StrategyContractTests):
    strategy_class = SVD
    options = {"n_factors": 8, "n_epochs": 5}


class TestSVDpp(StrategyContractTests):
    strategy_class = SVDpp
    options = {"n_factors": 4, "n_epochs": 3}
    robustness_examples = 15


class TestNMF(StrategyContractTests):
    strategy_class = NMF
    options = {"n_factors": 4, "n_epochs": 5}


class TestBaselineOnly(StrategyContractTests):
    strategy_class = BaselineOnly


class TestKNNBaseline(StrategyContractTests):
    strategy_class = KNNBaseline
    options = {"k": 10}


class TestSlopeOne(StrategyContractTests):
    strategy_class = SlopeOne


class TestKNNBaselinePearsonItems(StrategyContractTests):
    # undefined on view-only data: the robustness property sees it refuse to train
    strategy_class = KNNBaseline
    options = {"k": 10, "sim_options": {"name": "pearson_baseline", "user_based": False}}


@pytest.mark.parametrize("protocol", ["stratified", "temporal", "leave-last-n", "kfold"])
def test_no_surprise_model_fails_under_any_protocol(protocol):
    strategies = {
        "svd": SVD(n_factors=4, n_epochs=5), "svdpp": SVDpp(n_factors=4, n_epochs=3),
        "nmf": NMF(n_factors=4, n_epochs=5), "baseline_only": BaselineOnly(),
        "knn_baseline": KNNBaseline(k=10), "slope_one": SlopeOne(),
        "knn_items": KNNBaseline(k=10, sim_options={"name": "pearson_baseline",
                                                    "user_based": False}),
    }
    report = evaluate(strategies, sparse_shop(), protocol, k=5, folds=3)
    for result in report["results"]:
        assert "failed" not in result, (result["name"], result.get("failed"))
        assert "skipped" not in result, (result["name"], result.get("skipped"))
