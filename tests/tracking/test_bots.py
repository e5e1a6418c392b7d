"""Crawler detection: the maintained crawler list plus the site's own pattern."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from personalize.identity import bots
from personalize.identity.bots import is_bot_request, is_bot_user_agent
from tests.tracking.conftest import BOT_UA, BROWSER_UA

#: Real User-Agent headers of script clients, crawlers and monitors.
SCRIPTS_AND_CRAWLERS = [
    "Go-http-client/1.1",
    "Go-http-client/2.0",
    "Java/17.0.2",
    "Java/1.8.0_392",
    "Java-http-client/17.0.2",
    "Scrapy/2.11 (+https://scrapy.org)",
    "python-requests/2.32.3",
    "python-httpx/0.27.0",
    "Python/3.11 aiohttp/3.9.5",
    "Python-urllib/3.11",
    "curl/8.5.0",
    "Wget/1.21.4",
    "Apache-HttpClient/4.5.14 (Java/17.0.2)",
    "okhttp/4.12.0",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "axios/1.7.2",
    "undici",
    "libwww-perl/6.72",
    "Ruby",
    "PostmanRuntime/7.36.0",
    "Dart/3.4 (dart:io)",
    "GuzzleHttp/7",
    "kube-probe/1.29",
    "ELB-HealthChecker/2.0",
    BOT_UA,
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
    "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/126.0.0.0 Safari/537.36",
    "Chrome-Lighthouse",
    "Mozilla/5.0 (compatible; SomeNewBot/1.0)",  # not on any list: the generic pattern
    "MyCrawler/0.1",
]

#: Real browsers on desktop and mobile: never flagged.
BROWSERS = [
    BROWSER_UA,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0",
    # a phone maker whose name ends in "bot"
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/468.0.0.35.109;FBBV/615463373]",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
]


@pytest.mark.parametrize("ua", SCRIPTS_AND_CRAWLERS)
def test_crawlers_and_scripts_are_bots(ua):
    assert is_bot_user_agent(ua)


@pytest.mark.parametrize("ua", [*BROWSERS, "", None])
def test_browsers_are_not(ua):
    assert not is_bot_user_agent(ua)


def test_the_maintained_list_is_used(settings):
    # Nothing in the site's pattern names these: they come from crawler-user-agents.
    settings.PERSONALIZE = {**settings.PERSONALIZE, "BOT_USER_AGENT_PATTERN": ""}
    for ua in ("Go-http-client/1.1", "Scrapy/2.11 (+https://scrapy.org)", BOT_UA):
        assert is_bot_user_agent(ua), ua
    assert not is_bot_user_agent("Java/17.0.2")  # the list does not name Java's client


def test_the_pattern_extends_the_list(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "BOT_USER_AGENT_PATTERN": r"^acme-sync/"}
    assert is_bot_user_agent("ACME-Sync/2.0")
    assert is_bot_user_agent(BOT_UA)
    assert not is_bot_user_agent(BROWSER_UA)


def test_the_pattern_alone_replaces_the_list(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "BOT_USER_AGENT_PATTERN": "firefox",
                            "BOT_USER_AGENT_LIST": False}
    assert is_bot_user_agent("Mozilla/5.0 Gecko Firefox/127.0")
    assert not is_bot_user_agent(BOT_UA)
    settings.PERSONALIZE = {**settings.PERSONALIZE, "BOT_USER_AGENT_PATTERN": ""}
    assert not is_bot_user_agent(BOT_UA)  # both off: no filter


def test_each_user_agent_is_classified_once_and_long_ones_are_cut():
    bots._classify.cache_clear()
    for _ in range(3):
        assert not is_bot_user_agent(BROWSER_UA)
    info = bots._classify.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    padded = "Mozilla/5.0 " + "x" * 8000 + " Googlebot/2.1"
    assert not is_bot_user_agent(padded)  # past the first 512 characters
    assert is_bot_user_agent("Googlebot/2.1 " + "x" * 8000)


def test_request_header_is_read():
    assert is_bot_request(RequestFactory().get("/", HTTP_USER_AGENT=BOT_UA))
    assert not is_bot_request(RequestFactory().get("/", HTTP_USER_AGENT=BROWSER_UA))
    assert is_bot_request(RequestFactory().get("/", HTTP_USER_AGENT="Go-http-client/1.1"))
