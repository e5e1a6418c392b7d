"""The synthetic shop every strategy test fits (``personalize.testing.synthetic_shop``)."""

from __future__ import annotations

import pytest

from personalize.dataset import Dataset
from personalize.testing import synthetic_shop


@pytest.fixture(scope="session")
def shop() -> Dataset:
    return synthetic_shop()
