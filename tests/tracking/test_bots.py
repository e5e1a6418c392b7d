"""Crawler detection."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from personalize.identity.bots import is_bot_request, is_bot_user_agent
from tests.tracking.conftest import BOT_UA, BROWSER_UA


@pytest.mark.parametrize(
    "ua",
    [BOT_UA, "Mozilla/5.0 (compatible; bingbot/2.0)", "facebookexternalhit/1.1",
     "python-requests/2.32", "curl/8.5.0", "Wget/1.21", "Mozilla/5.0 HeadlessChrome/120",
     "Pingdom.com_bot", "Chrome-Lighthouse", "Apache-HttpClient/4.5"],
)
def test_crawlers_and_scripts_are_bots(ua):
    assert is_bot_user_agent(ua)


@pytest.mark.parametrize(
    "ua",
    [BROWSER_UA, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", "", None],
)
def test_browsers_are_not(ua):
    assert not is_bot_user_agent(ua)


def test_pattern_is_a_setting(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "BOT_USER_AGENT_PATTERN": "firefox"}
    assert is_bot_user_agent("Mozilla/5.0 Gecko Firefox/127.0")
    assert not is_bot_user_agent(BOT_UA)
    settings.PERSONALIZE = {**settings.PERSONALIZE, "BOT_USER_AGENT_PATTERN": ""}
    assert not is_bot_user_agent(BOT_UA)


def test_request_header_is_read():
    assert is_bot_request(RequestFactory().get("/", HTTP_USER_AGENT=BOT_UA))
    assert not is_bot_request(RequestFactory().get("/", HTTP_USER_AGENT=BROWSER_UA))
