"""The embeddings strategy passes the strategy contract that core ships."""

from __future__ import annotations

import pytest

pytest.importorskip("personalize_embeddings",
                    reason="the personalize-embeddings plugin is not installed")

from personalize_embeddings import Embeddings

from personalize.evaluation.runner import evaluate
from personalize.testing import StrategyContractTests, sparse_shop


class TestEmbeddings(StrategyContractTests):
    strategy_class = Embeddings
    robustness_examples = 10  # each example embeds its catalog with the bundled model


@pytest.mark.parametrize("protocol", ["stratified", "temporal", "leave-last-n", "kfold"])
def test_embeddings_do_not_fail_under_any_protocol(protocol):
    report = evaluate({"embeddings": Embeddings()}, sparse_shop(), protocol, k=5, folds=2)
    (result,) = report["results"]
    assert "failed" not in result and "skipped" not in result, result
