"""End-to-end: the demo shop in headless Chromium.

A real ``manage.py runserver`` with the demo's own settings (``example_shop.settings``)
serves a temporary SQLite database seeded with a slice of the Amazon data and
trained by ``seed_shop``. The browser logs in as a seeded shopper, sees the
"Recommended for You" block, clicks an item, and the test checks that the
click event was stored and that the block changed. Screenshots go to
``test-artifacts/e2e/``.

Needs Debian's chromium (``apt-get install -y chromium``) and Playwright for Python.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
N_USERS = 500
#: Enough for the home block (a blend of EASE and item kNN, popular as fallback);
#: the embeddings model is left out to keep the test quick.
STRATEGIES = ("popular", "item_knn", "ease", "hybrid")
#: Headless Chromium says "HeadlessChrome" in its user agent, which the tracking bot
#: filter rightly drops (BOT_USER_AGENT_PATTERN); the test browses as a person would.
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
#: The user agent is set on the browser too, not only on the page's context: a beacon
#: sent while the page unloads (the tracker's click) leaves without the context's
#: override, and as "HeadlessChrome" it would be dropped as a bot's.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    f"--user-agent={USER_AGENT}",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} not found: apt-get install -y chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is missing")


@dataclass
class DemoServer:
    url: str
    db_path: Path

    def query(self, sql: str, *params: object) -> list[tuple]:
        with sqlite3.connect(self.db_path, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manage(args: list[str], env: dict[str, str], timeout: int) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[DemoServer]:
    var_dir = tmp_path_factory.mktemp("example_shop_var")
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="example_shop.settings", EXAMPLE_SHOP_VAR_DIR=str(var_dir),
        PERSONALIZE_DATA_DIR=str(data_dir), DEBUG="1", PYTHONUNBUFFERED="1",
    )
    _manage(["migrate", "--noinput", "-v0"], env, timeout=300)
    strategies = [arg for name in STRATEGIES for arg in ("--strategy", name)]
    _manage(["seed_shop", "--limit-users", str(N_USERS), "--no-progress", *strategies], env,
            timeout=600)

    port = _free_port()
    log = (var_dir / "runserver.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("runserver did not come up:\n"
                            + (var_dir / "runserver.log").read_text()[-3000:])
            time.sleep(0.5)
        yield DemoServer(url=url, db_path=var_dir / "example_shop.sqlite3")
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, user_agent=USER_AGENT
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def home_block(page: object) -> list[tuple[str, str]]:
    """(ASIN, explanation) of each item in the home "Recommended for You" block."""
    items = page.locator('[data-testid="home-recommendations"] [data-testid="rec-item"]')  # type: ignore[attr-defined]
    return [
        (item.get_attribute("data-asin") or "",
         " ".join(item.locator(".personalize-explanation").all_inner_texts()))
        for item in items.all()
    ]


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def events_of_user(server: DemoServer, username: str, event_type: str) -> list[str]:
    rows = server.query(
        "SELECT i.external_id FROM personalize_event e "
        "JOIN personalize_subject s ON e.subject_id = s.id "
        "JOIN auth_user u ON s.user_id = u.id "
        "LEFT JOIN personalize_item i ON e.item_id = i.id "
        "WHERE u.username = ? AND e.event_type = ? ORDER BY e.id",
        username, event_type,
    )
    return [row[0] for row in rows]


def test_logged_in_shopper_sees_the_block_change_after_a_click(demo_server: DemoServer,
                                                               page: object) -> None:
    url = demo_server.url
    page.goto(url + "/accounts/login/")  # type: ignore[attr-defined]
    page.fill("#id_username", "user0")  # type: ignore[attr-defined]
    page.fill("#id_password", "demo")  # type: ignore[attr-defined]
    shot(page, "01-login")
    page.click("[data-testid=login-submit]")  # type: ignore[attr-defined]
    page.wait_for_url(url + "/")  # type: ignore[attr-defined]
    assert "Hi, user0" in page.inner_text("header")  # type: ignore[attr-defined]

    block = page.locator('[data-testid="home-recommendations"]')  # type: ignore[attr-defined]
    assert "Recommended for You" in block.inner_text()
    before = home_block(page)
    assert len(before) >= 4, before
    shot(page, "02-home-before-click")

    clicks_before = events_of_user(demo_server, "user0", "click")
    first = block.locator('[data-testid="rec-item"] a.personalize-link').first
    clicked = first.get_attribute("data-personalize-item")
    first.click()
    page.wait_for_url(f"{url}/p/{clicked}/")  # type: ignore[attr-defined]
    assert page.locator('[data-testid="product"]').get_attribute("data-asin") == clicked  # type: ignore[attr-defined]
    shot(page, "03-product-page")

    # The tracker sends the click with sendBeacon while the browser navigates.
    clicks = wait_for(lambda: events_of_user(demo_server, "user0", "click")[len(clicks_before):])
    assert clicks == [clicked]
    assert clicked in events_of_user(demo_server, "user0", "view")

    def changed() -> list[tuple[str, str]] | None:
        page.goto(url + "/")  # type: ignore[attr-defined]
        after = home_block(page)
        return after if after and after != before else None

    after = wait_for(changed, timeout=15, interval=1)
    shot(page, "04-home-after-click")
    assert after, f"the block did not change after clicking {clicked}: {before}"


def test_anonymous_visitor_gets_popular_items_then_personalized_ones(demo_server: DemoServer,
                                                                    page: object) -> None:
    url = demo_server.url
    page.goto(url + "/")  # type: ignore[attr-defined]
    before = home_block(page)
    assert before, "an anonymous visitor should see popular items"
    banner = page.locator("[data-personalize-consent-banner]")  # type: ignore[attr-defined]
    assert banner.is_visible()
    shot(page, "05-anonymous-home")

    banner.locator("button[value='1']").click()
    wait_for(lambda: page.evaluate(  # type: ignore[attr-defined]
        "document.documentElement.dataset.personalizeConsent") == "granted" or not banner.count(),
        timeout=10)
    page.goto(url + "/")  # type: ignore[attr-defined]
    assert page.locator("[data-personalize-consent-banner]").count() == 0  # type: ignore[attr-defined]

    first = page.locator(  # type: ignore[attr-defined]
        '[data-testid="home-recommendations"] [data-testid="rec-item"] a.personalize-link'
    ).first
    clicked = first.get_attribute("data-personalize-item")
    first.click()
    page.wait_for_url(f"{url}/p/{clicked}/")  # type: ignore[attr-defined]

    def changed() -> list[tuple[str, str]] | None:
        page.goto(url + "/")  # type: ignore[attr-defined]
        after = home_block(page)
        return after if after and after != before else None

    after = wait_for(changed, timeout=15, interval=1)
    shot(page, "06-anonymous-home-after-click")
    assert after, f"the block did not change after the visitor clicked {clicked}"


def ease_shopper() -> str:
    """A seeded shopper whom the demo's home experiment serves EASE, not the best sellers.

    The split is the real one: the experiment's fixed salt and the shopper's stable
    subject key, variants in the order they were created (popular, then ease).
    """
    from example_shop.shop.experiment_seeding import SALT
    from example_shop.shop.seeding import subject_key, user_name
    from personalize.experiments.buckets import bucket, choose

    return user_name(next(u for u in range(N_USERS)
                          if choose((1.0, 1.0), bucket(SALT, subject_key(u))) == 1))


def test_shopper_sees_why_and_what_each_item_costs(demo_server: DemoServer, page: object) -> None:
    url = demo_server.url
    page.goto(url + "/accounts/login/")  # type: ignore[attr-defined]
    page.fill("#id_username", ease_shopper())  # type: ignore[attr-defined]
    page.fill("#id_password", "demo")  # type: ignore[attr-defined]
    page.click("[data-testid=login-submit]")  # type: ignore[attr-defined]
    page.wait_for_url(url + "/")  # type: ignore[attr-defined]
    reasons = [reason for _, reason in home_block(page)]
    # the seeded history is purchases: a personal pick says so, never "viewed"
    assert any(r.startswith("Because you bought ") for r in reasons), reasons
    assert not any(r.startswith("Because you viewed ") for r in reasons), reasons
    cards = page.locator('[data-testid="home-recommendations"] [data-testid="rec-item"]')  # type: ignore[attr-defined]
    first = cards.first
    assert first.locator(".card__price").inner_text().startswith("$")
    image = first.locator(".card__thumb img")
    assert image.get_attribute("src").endswith("/image.svg")
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0",  # type: ignore[attr-defined]
                         image.element_handle())
    shot(page, "07-home-explanations-and-attributes")

    first.locator("a.personalize-link").click()
    page.wait_for_selector('[data-testid="also-bought"]')  # type: ignore[attr-defined]
    bought = page.locator('[data-testid="also-bought"] .personalize-explanation').all_inner_texts()  # type: ignore[attr-defined]
    assert any(text.startswith("Customers who bought ") for text in bought), bought
    shot(page, "08-product-customers-also-bought")


def test_visitor_changes_consent_on_the_privacy_choices_page(demo_server: DemoServer,
                                                            page: object) -> None:
    url = demo_server.url
    page.goto(url + "/")  # type: ignore[attr-defined]
    page.locator("[data-personalize-consent-banner] button[value='1']").click()  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "document.documentElement.dataset.personalizeConsent === 'granted'")
    first = page.locator(  # type: ignore[attr-defined]
        '[data-testid="home-recommendations"] [data-testid="rec-item"] a.personalize-link').first
    first.click()
    page.wait_for_selector('[data-testid="product"]')  # type: ignore[attr-defined]

    # the banner is gone for good; the footer leads back to the choices
    assert page.locator("[data-personalize-consent-banner]").count() == 0  # type: ignore[attr-defined]
    product_url = page.url  # type: ignore[attr-defined]
    page.click("[data-testid=privacy-choices]")  # type: ignore[attr-defined]
    page.wait_for_selector("[data-personalize-preferences]")  # type: ignore[attr-defined]
    purpose = page.locator('[data-personalize-purpose="personalization"]')  # type: ignore[attr-defined]
    assert purpose.get_attribute("data-personalize-purpose-state") == "granted"
    warning = purpose.locator(".personalize-preferences__withdrawal").inner_text()
    assert "erases the" in warning and "events recorded about you" in warning
    assert page.title().startswith("Privacy choices")  # type: ignore[attr-defined]
    shot(page, "09-privacy-choices")

    purpose.locator("button[value='0']").click()
    page.wait_for_selector(  # type: ignore[attr-defined]
        '[data-personalize-purpose="personalization"][data-personalize-purpose-state="denied"]')
    assert "Your privacy choices were saved." in page.inner_text("main")  # type: ignore[attr-defined]
    shot(page, "10-privacy-choices-after-withdrawal")
    page.click("a.personalize-preferences__back")  # type: ignore[attr-defined]
    page.wait_for_url(product_url)  # type: ignore[attr-defined]
    assert page.evaluate(  # type: ignore[attr-defined]
        "document.documentElement.dataset.personalizeConsent") == "denied"


def test_a_bot_flagged_browser_accepting_is_told_why(demo_server: DemoServer,
                                                     browser: object) -> None:
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900},
        user_agent="Mozilla/5.0 (compatible; ExampleBot/1.0; +https://example.com/bot)",
    )
    try:
        page = context.new_page()
        page.goto(demo_server.url + "/")
        page.locator("[data-personalize-consent-banner] button[value='1']").click()
        page.wait_for_selector("[data-personalize-consent-refused]")
        assert page.locator("[data-personalize-consent-refused]").get_attribute(
            "data-personalize-consent-refused") == "crawler"
        text = page.inner_text("main")
        assert "identified itself as an automated program" in text
        assert "ExampleBot/1.0" in text
        shot(page, "11-bot-accept-refused")
    finally:
        context.close()


def test_the_api_docs_page_works_offline(demo_server: DemoServer, page: object) -> None:
    """Swagger UI comes from the site's static files: with every other host cut off, the
    page still lists the API's operations."""
    url = demo_server.url
    elsewhere: list[str] = []

    def only_the_site(route: object) -> None:
        target = route.request.url  # type: ignore[attr-defined]
        if target.startswith(url):
            route.continue_()  # type: ignore[attr-defined]
        else:
            elsewhere.append(target)
            route.abort()  # type: ignore[attr-defined]

    page.route("**/*", only_the_site)  # type: ignore[attr-defined]
    page.goto(url + "/api/personalize/docs/")  # type: ignore[attr-defined]
    operations = page.locator(".swagger-ui .opblock")  # type: ignore[attr-defined]
    operations.first.wait_for()
    shot(page, "07-api-docs-offline")
    assert operations.count() == 7
    assert "/api/personalize/recommendations/" in page.inner_text(".swagger-ui")  # type: ignore[attr-defined]
    assert elsewhere == []
