"""The training fixtures (a catalog, events, fake strategies), for the model loader's tests."""

from tests.training.conftest import (  # noqa: F401 - fixtures used by test_loader.py
    _fresh_process_state,
    catalog,
    fake_strategies,
    shop,
)
