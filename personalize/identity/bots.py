"""Known crawlers, monitors and scripts: their requests are never recorded.

Two sources decide, and a User-Agent matching either is a bot's:

* the maintained list of the ``crawler-user-agents`` package
  (``PERSONALIZE["BOT_USER_AGENT_LIST"]``, on by default): about 1,500 patterns
  for search, SEO, social-preview and AI crawlers, uptime monitors, headless
  browsers and HTTP libraries (Go-http-client, Scrapy, python-requests, curl,
  okhttp, ...), matched the way its authors write them (case-sensitively);
* ``PERSONALIZE["BOT_USER_AGENT_PATTERN"]``, the site's own regular expression
  (case-insensitive ``re.search``). Its default catches clients that describe
  themselves generically (``...bot/1.0``, ``...crawler``) and script clients
  the list does not name (Java's built-in client, Ruby, PHP, Dart, Postman, ...).

A request without a User-Agent is not treated as a bot: test clients send none,
and every scripting client above sends one. Only the first
:data:`MAX_USER_AGENT_CHARS` characters are looked at, and each distinct value
is classified once per process: real traffic repeats a few hundred strings,
and the list costs a fraction of a millisecond per new one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from crawleruseragents import is_crawler

from personalize.conf import personalize_settings

#: The longest User-Agent among the list's examples has 285 characters; a longer
#: header is cut here so that a padded one cannot make each check slow.
MAX_USER_AGENT_CHARS = 512


@lru_cache(maxsize=8)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    return re.compile(pattern, re.IGNORECASE)


@lru_cache(maxsize=4096)
def _classify(user_agent: str, pattern: str, use_list: bool) -> bool:
    compiled = _compiled(pattern)
    if compiled is not None and compiled.search(user_agent):
        return True
    return use_list and is_crawler(user_agent)


def is_bot_user_agent(user_agent: str | None) -> bool:
    """Whether ``user_agent`` belongs to a crawler, a monitor or a script.

    Args:
        user_agent: the raw ``User-Agent`` header value (``None`` if absent).

    Returns:
        ``True`` when the header matches ``BOT_USER_AGENT_PATTERN`` or, with
        ``BOT_USER_AGENT_LIST`` on, the maintained crawler list.
    """
    if not user_agent:
        return False
    settings = personalize_settings
    return _classify(
        user_agent[:MAX_USER_AGENT_CHARS],
        settings.BOT_USER_AGENT_PATTERN or "",
        settings.BOT_USER_AGENT_LIST is True,
    )


def is_bot_request(request: Any) -> bool:
    """Whether an ``HttpRequest`` (or DRF ``Request``) comes from a bot."""
    meta = getattr(request, "META", None) or {}
    return is_bot_user_agent(meta.get("HTTP_USER_AGENT"))
