"""End-to-end: an experiment on the demo shop's home block, from a shopper's click to the report.

A staff member starts an experiment on the home placement in the admin; a seeded
shopper sees the home block (an exposure, with its impression id in the markup),
clicks a card (the tracker's beacon carries the impression id), adds the product
to the cart and buys it. ``manage.py personalize_rollup`` then runs against the
server's database, and the experiment's results page in the admin shows that one
subject with the impression, the click, the conversion and the order's revenue.
Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.shop import CHROMIUM, USER_AGENT, DemoServer, log_in, shot, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} not found: apt-get install -y chromium"),
]
pytest.importorskip("playwright.sync_api", reason="Playwright for Python is missing")

SHOPPER = "user3"
#: A draft experiment on the home placement (or the one the demo already runs there).
DRAFT = """
from personalize.models import Experiment, Variant
running = Experiment.objects.filter(placement="home", status="running").first()
if running is None:
    experiment = Experiment.objects.create(
        name="E2E home: EASE vs popular", placement="home", primary_metric="conversion")
    Variant.objects.create(experiment=experiment, key="popular", kind="popular",
                           is_control=True)
    Variant.objects.create(experiment=experiment, key="ease", strategy="ease")
print("experiment", (running or experiment).pk, (running or experiment).status)
"""


@pytest.fixture
def admin_page(browser: Any) -> Any:
    """A second browser context, signed in to the admin as the demo's staff user."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, user_agent=USER_AGENT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def admin_log_in(page: Any, url: str) -> None:
    page.goto(url + "/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin")
    page.click("input[type=submit]")
    page.wait_for_url(url + "/admin/")


def start_in_admin(page: Any, url: str, experiment_id: int) -> None:
    """Start the draft with the list's action: in the server's process, which then serves it."""
    page.goto(url + "/admin/personalize/experiment/")
    page.check(f'input[name="_selected_action"][value="{experiment_id}"]')
    page.select_option("select[name=action]", "start_experiments")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist li.success")
    assert "started." in page.inner_text("ul.messagelist")


def uuid_hex(value: str) -> str:
    """An impression id as SQLite stores a UUID (32 hex digits)."""
    return value.replace("-", "").lower()


def test_a_click_and_an_order_reach_the_experiment_results(demo_server: DemoServer,
                                                           page: Any, admin_page: Any) -> None:
    url = demo_server.url
    output = demo_server.manage("shell", "-c", DRAFT)
    [(experiment_id, status)] = [tuple(line.split()[1:]) for line in output.splitlines()
                                 if line.startswith("experiment ")]
    admin_log_in(admin_page, url)
    if status == "draft":
        start_in_admin(admin_page, url, int(experiment_id))
        shot(admin_page, "20-experiment-started")

    # the shopper sees the home block: one exposure, in one of the experiment's variants
    log_in(page, url, SHOPPER)
    block = page.locator('[data-testid="home-recommendations"] .personalize-block')
    impression = block.get_attribute("data-personalize-impression")
    assert impression, "the home block carries no impression id"
    shot(page, "21-home-in-experiment")
    exposure = wait_for(lambda: demo_server.query(
        "SELECT x.id, v.key FROM personalize_exposure x "
        "JOIN personalize_variant v ON x.variant_id = v.id "
        "WHERE x.experiment_id = ? AND x.id = ?", experiment_id, uuid_hex(impression)))
    assert exposure, "the home block's exposure was not written (with its experiment)"
    [(_, variant)] = exposure

    # a click on a card: the tracker's beacon carries the block's impression id
    card = block.locator('[data-testid="rec-item"] a.personalize-link').first
    asin = card.get_attribute("data-personalize-item")
    card.click()
    page.wait_for_url(f"{url}/p/{asin}/")

    def clicks() -> list[dict[str, Any]]:
        rows = demo_server.query(
            "SELECT e.context FROM personalize_event e "
            "JOIN personalize_subject s ON e.subject_id = s.id "
            "JOIN auth_user u ON s.user_id = u.id "
            "WHERE u.username = ? AND e.event_type = 'click'", SHOPPER)
        return [json.loads(context) for context, in rows]

    clicked = wait_for(clicks)
    assert [uuid_hex(str(c.get("impression"))) for c in clicked] == [uuid_hex(impression)]
    shot(page, "22-product-clicked")

    # into the cart, and bought
    page.click("form.buy button[type=submit]")
    page.wait_for_url(url + "/cart/")
    page.goto(url + "/checkout/")
    page.click("button:has-text('Place order')")
    page.wait_for_url(f"{url}/orders/**")
    page.wait_for_load_state("networkidle")
    shot(page, "23-order-placed")
    reference = page.url.rstrip("/").rsplit("/", 1)[-1]
    [(total,)] = demo_server.query("SELECT total FROM shop_order WHERE reference = ?", reference)
    total = float(total)
    assert total > 0

    # the rollup, as the beat task would run it
    demo_server.manage("personalize_rollup", "-v0")
    days = demo_server.query(
        "SELECT day, SUM(impressions), SUM(clicks), SUM(add_to_carts), SUM(conversions), "
        "SUM(revenue) FROM personalize_dailyrollup WHERE experiment_id = ? GROUP BY day",
        experiment_id)
    assert len(days) == 1, days
    [(_, impressions, clicks_, add_to_carts, conversions, revenue)] = days
    assert impressions >= 1 and clicks_ == 1 and add_to_carts == 1 and conversions >= 1
    assert revenue == pytest.approx(total)
    [outcome] = demo_server.query(
        "SELECT exposures, clicks, conversions, revenue FROM personalize_subjectoutcome "
        "WHERE experiment_id = ?", experiment_id)
    assert outcome[0] >= 1 and outcome[1] >= 1 and outcome[2] >= 1
    assert outcome[3] == pytest.approx(total)

    # the report in the admin: one subject, who clicked, converted and spent the order total
    admin_page.goto(f"{url}/admin/personalize/experiment/{experiment_id}/results/")
    admin_page.wait_for_selector('[data-testid="verdict"]')
    shot(admin_page, "24-experiment-results")
    cells = admin_page.locator(f'table[data-testid="variants"] tr[data-variant="{variant}"] td')
    subjects, ctr, conversion, per_subject = cells.all_inner_texts()[1:5]
    assert subjects.split()[0] == "1"
    assert ctr.startswith("100.0% [") and conversion.startswith("100.0% [")
    assert per_subject == f"{total:.2f}"
    assert admin_page.locator(".personalize-chart").count() >= 1  # the daily chart, at least
