"""The embeddings strategy passes the strategy contract that core ships."""

from __future__ import annotations

import pytest

pytest.importorskip("personalize_embeddings",
                    reason="the personalize-embeddings plugin is not installed")

from personalize_embeddings import Embeddings

from personalize.testing import StrategyContractTests


class TestEmbeddings(StrategyContractTests):
    strategy_class = Embeddings
    robustness_examples = 10  # each example embeds its catalog with the bundled model
