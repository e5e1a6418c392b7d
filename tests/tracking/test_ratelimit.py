"""Fixed-window rate limits in the cache."""

from __future__ import annotations

from unittest import mock

import pytest

from personalize.tracking import ratelimit
from tests.testapp.settings import USE_SERVICES


def test_parse_rate():
    assert ratelimit.parse_rate("600/minute") == (600, 60)
    assert ratelimit.parse_rate("5/second") == (5, 1)
    assert ratelimit.parse_rate("1/day") == (1, 86400)
    assert ratelimit.parse_rate(None) is None
    for bad in ("600", "x/minute", "5/fortnight", "-1/hour"):
        with pytest.raises(ValueError, match="Invalid rate"):
            ratelimit.parse_rate(bad)


def test_limit_counts_units_and_says_when_to_come_back(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "RATE_LIMITS": {"ip": "10/minute"}}
    t = 1_000_040.0  # 20 s into a minute window (1_000_020 is a multiple of 60)
    assert ratelimit.hit("ip", "1.2.3.4", 6, now=t) is None
    assert ratelimit.hit("ip", "1.2.3.4", 4, now=t) is None
    limited = ratelimit.hit("ip", "1.2.3.4", 1, now=t + 5)
    assert limited == ratelimit.RateLimited("ip", 35)
    # Another address has its own budget; the next window starts afresh.
    assert ratelimit.hit("ip", "5.6.7.8", 10, now=t) is None
    assert ratelimit.hit("ip", "1.2.3.4", 10, now=t + 40) is None


def test_subject_and_disabled_limits(settings):
    limits = {"subject": "2/hour", "ip": None}
    settings.PERSONALIZE = {**settings.PERSONALIZE, "RATE_LIMITS": limits}
    assert ratelimit.hit_ip("1.2.3.4", 1000) is None
    assert ratelimit.hit_subject(7, 2) is None
    assert ratelimit.hit_subject(7, 1).scope == "subject"
    assert ratelimit.hit_subject(8, 1) is None


@pytest.mark.skipif(not USE_SERVICES, reason="lists keys: needs a real Redis")
def test_subject_counter_key_carries_the_subject_token(settings):
    """Erasure finds per-subject keys by their ``subject:<pk>`` token."""
    from django.core.cache import caches

    from personalize.backends.cache import list_keys

    settings.PERSONALIZE = {**settings.PERSONALIZE, "RATE_LIMITS": {"subject": "2/hour"}}
    ratelimit.hit_subject(42, 1)
    keys = list_keys(["*subject:42:*"], caches["default"])
    assert keys is not None and len(keys) == 1
    assert keys[0].startswith("personalize:rl:subject:subject:42:")


def test_cache_outage_lets_requests_through(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "RATE_LIMITS": {"ip": "1/minute"}}
    with mock.patch("personalize.tracking.ratelimit.personalize_cache") as cache:
        cache.return_value.add.side_effect = ConnectionError("redis down")
        assert ratelimit.hit("ip", "1.2.3.4", 100) is None


def test_invalid_configured_rate_is_ignored(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "RATE_LIMITS": {"ip": "lots"}}
    assert ratelimit.hit("ip", "1.2.3.4", 100) is None
