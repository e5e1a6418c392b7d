"""Known crawlers and monitors: their requests are never recorded.

The pattern is ``PERSONALIZE["BOT_USER_AGENT_PATTERN"]`` (case-insensitive
``re.search``). A request without a User-Agent is not treated as a bot: the
common scripting clients (curl, wget, python-requests, Java and Go HTTP clients)
all send one that the default pattern matches, and test clients send none.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from personalize.conf import personalize_settings


@lru_cache(maxsize=8)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    return re.compile(pattern, re.IGNORECASE)


def is_bot_user_agent(user_agent: str | None) -> bool:
    """Whether ``user_agent`` belongs to a crawler, a monitor or a script.

    Args:
        user_agent: the raw ``User-Agent`` header value (``None`` if absent).

    Returns:
        ``True`` when the header matches the pattern.
    """
    if not user_agent:
        return False
    compiled = _compiled(personalize_settings.BOT_USER_AGENT_PATTERN or "")
    return bool(compiled and compiled.search(user_agent))


def is_bot_request(request: Any) -> bool:
    """Whether an ``HttpRequest`` (or DRF ``Request``) comes from a bot."""
    meta = getattr(request, "META", None) or {}
    return is_bot_user_agent(meta.get("HTTP_USER_AGENT"))
