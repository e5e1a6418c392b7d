"""End-to-end: the demo shop in headless Chromium.

A real ``manage.py runserver`` with the demo's own settings (``example_shop.settings``)
serves a temporary SQLite database seeded with a slice of the Amazon data and
trained by ``seed_shop`` (``tests/e2e/conftest.py``). The browser logs in as a
seeded shopper, sees the "Recommended for You" block, clicks an item, and the
test checks that the click event was stored and that the block changed. Screenshots go to
``test-artifacts/e2e/``.

Needs Debian's chromium (``apt-get install -y chromium``) and Playwright for Python.
"""

from __future__ import annotations

import pytest

from tests.e2e.shop import (
    CHROMIUM,
    N_USERS,
    DemoServer,
    events_of_user,
    home_block,
    shot,
    wait_for,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} not found: apt-get install -y chromium"),
]
pytest.importorskip("playwright.sync_api", reason="Playwright for Python is missing")


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
    assert operations.count() == 8  # with experiments/{id}/results/
    assert "/api/personalize/recommendations/" in page.inner_text(".swagger-ui")  # type: ignore[attr-defined]
    assert elsewhere == []
