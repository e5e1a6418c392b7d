"""Fixtures for tracking and ingestion tests."""

from __future__ import annotations

import pytest
from django.test import Client

from personalize.models import Item

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.fixture
def items(db) -> dict[str, Item]:
    """Five catalog items, sku-1 .. sku-5."""
    created = {}
    for n in range(1, 6):
        created[f"sku-{n}"] = Item.objects.create(external_id=f"sku-{n}", title=f"Item {n}")
    return created


@pytest.fixture
def browser() -> Client:
    """A browser-like client: a real User-Agent, CSRF enforced as in production."""
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT=BROWSER_UA)


@pytest.fixture
def opt_out(settings):
    """CONSENT_MODE opt-out: tracking allowed until withdrawn."""
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CONSENT_MODE": "opt-out"}
    yield


def personalize_settings_with(settings, **overrides):
    settings.PERSONALIZE = {**settings.PERSONALIZE, **overrides}
