"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client
from django.utils.crypto import get_random_string

from personalize.conf import personalize_settings


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data sets (../shared/data, or PERSONALIZE_DATA_DIR)."""
    path = Path(os.environ.get("PERSONALIZE_DATA_DIR") or personalize_settings.DATA_DIR)
    if not path.is_dir():
        pytest.fail(f"Data directory {path} is missing; set PERSONALIZE_DATA_DIR.")
    return path


@pytest.fixture(autouse=True)
def _clear_cache():
    """Every test starts with an empty cache (locmem or the test's Redis prefix).

    And with an empty exposure buffer: rows one test logged are never written by another.
    """
    from django.core.cache import caches

    from personalize.backends.cache import reset_outages
    from personalize.outcomes.exposures import exposures

    reset_outages()  # a cache failure simulated by an earlier test is not remembered
    exposures.clear()  # nor exposures an earlier test left unwritten
    for alias in caches:
        caches[alias].clear()
    yield
    exposures.clear()


@pytest.fixture
def browser():
    """A client that must send CSRF tokens the way a page does (``enforce_csrf_checks``)."""
    client = Client(enforce_csrf_checks=True)
    token = get_random_string(32)  # a CSRF secret: 32 letters and digits
    client.cookies["csrftoken"] = token
    client.csrf = token
    return client
