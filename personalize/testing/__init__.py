"""The strategy contract test, for every strategy: built-in, plugin, or your own.

Subclass :class:`StrategyContractTests` in your package's test suite (pytest
with pytest-django, or any pytest run with Django settings configured)::

    from personalize.testing import StrategyContractTests
    from my_package import MyStrategy


    class TestMyStrategyContract(StrategyContractTests):
        strategy_class = MyStrategy
        options = {"factors": 8}

Every test fits the strategy once on :func:`synthetic_shop` (override
:meth:`StrategyContractTests.make_dataset` for other data) and checks what core
relies on: answers of the right shape (at most ``k`` distinct catalog items,
best first, none from the history or the exclusions) or ``CannotRecommend``;
unknown subjects and items; artifacts stamped by ``Strategy.new_artifact``
that survive bytes and Django storage; ``recommend_many`` and ``explain_many``
agreeing with their one-at-a-time forms; and erasure: after
``forget_subjects`` the artifact answers for an erased subject exactly as for
one it never saw.

``test_robust_on_any_data`` fits the strategy on random sparse datasets
(:func:`sparse_datasets`: single-event subjects, items seen once, string or
integer ids, ratings mixed with implicit events) and asks every hook with
awkward requests (:func:`assert_robust`): the strategy answers or raises
``CannotRecommend``, never anything else. Set
:attr:`StrategyContractTests.robustness_examples` lower for a slow strategy.
The contract tests need pytest and hypothesis.
"""

from personalize.testing.answers import (
    ask,
    assert_robust,
    assert_same_answers,
    assert_valid_answer,
)
from personalize.testing.contract import NEEDS, StrategyContractTests
from personalize.testing.data import (
    UNKNOWN_ITEM,
    UNKNOWN_SUBJECT,
    sparse_datasets,
    sparse_shop,
    synthetic_shop,
)

__all__ = [
    "NEEDS",
    "UNKNOWN_ITEM",
    "UNKNOWN_SUBJECT",
    "StrategyContractTests",
    "ask",
    "assert_robust",
    "assert_same_answers",
    "assert_valid_answer",
    "sparse_datasets",
    "sparse_shop",
    "synthetic_shop",
]
