"""Cache-backed fixed-window rate limits for event ingestion.

``PERSONALIZE["RATE_LIMITS"]`` maps a scope (``"subject"``, ``"ip"``) to
``"N/second|minute|hour|day"`` or ``None``. Each accepted request adds the
number of events it carries to a counter per scope and identity for the current
window (``cache.add`` + ``cache.incr``: atomic on Redis). Over the limit the
caller answers 429 with ``Retry-After`` (seconds until the window ends).

If the cache is down the request is let through: losing Redis must not lose
events.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from personalize.backends.cache import personalize_cache, warn_unreachable
from personalize.conf import personalize_settings

logger = logging.getLogger(__name__)

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
KEY_PREFIX = "personalize:rl"


@lru_cache(maxsize=32)
def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"600/minute"`` -> ``(600, 60)``; ``None`` or ``""`` -> ``None`` (no limit).

    Raises:
        ValueError: for anything else.
    """
    if not rate:
        return None
    try:
        count_text, period_name = str(rate).split("/", 1)
        count, period = int(count_text), PERIODS[period_name]
    except (ValueError, KeyError):
        raise ValueError(f"Invalid rate {rate!r}; use 'N/second|minute|hour|day'.") from None
    if count < 0:
        raise ValueError(f"Invalid rate {rate!r}; the count cannot be negative.")
    return count, period


@dataclass(frozen=True)
class RateLimited:
    """A limit was exceeded: which one, and when to come back."""

    scope: str
    retry_after: int


def hit(
    scope: str, ident: str, amount: int = 1, now: float | None = None, *, hashed: bool = True
) -> RateLimited | None:
    """Count ``amount`` units for ``ident`` under ``scope``'s limit.

    Args:
        scope: a key of ``RATE_LIMITS``.
        ident: who is counted (an IP address, a subject token).
        amount: how many units (events) this request adds.
        now: the clock, for tests.
        hashed: store ``ident`` hashed in the key (IP addresses); subjects use
            their ``subject:<pk>`` token unhashed so erasure finds the key.

    Returns:
        ``None`` while within the limit, else a :class:`RateLimited`.
    """
    limits = personalize_settings.RATE_LIMITS or {}
    try:
        rate = parse_rate(limits.get(scope))
    except ValueError:
        logger.error("Ignoring invalid PERSONALIZE['RATE_LIMITS'][%r]", scope)
        return None
    if rate is None or amount <= 0:
        return None
    limit, period = rate
    now = time.time() if now is None else now
    window = int(now // period)
    if hashed:
        ident = hashlib.blake2b(ident.encode("utf-8", "replace"), digest_size=12).hexdigest()
    key = f"{KEY_PREFIX}:{scope}:{ident}:{window}"
    cache = personalize_cache()
    try:
        cache.add(key, 0, timeout=period + 1)
        count = cache.incr(key, amount)
    except ValueError:  # the key expired between add and incr
        cache.set(key, amount, timeout=period + 1)
        count = amount
    except Exception as exc:
        warn_unreachable("letting requests through without a rate limit", exc)
        return None
    if count > limit:
        retry_after = max(1, math.ceil((window + 1) * period - now))
        return RateLimited(scope, retry_after)
    return None


def hit_ip(ip: str, amount: int = 1) -> RateLimited | None:
    """Count events from one client address (stored hashed)."""
    return hit("ip", ip, amount) if ip else None


def hit_subject(subject_id: int, amount: int = 1) -> RateLimited | None:
    """Count events of one subject (key ``personalize:rl:subject:subject:<pk>:<window>``)."""
    return hit("subject", f"subject:{int(subject_id)}", amount, hashed=False)
