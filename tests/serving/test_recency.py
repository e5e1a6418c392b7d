"""A shopper's current browsing moves the block of a long purchase history (HISTORY_HALF_LIFE_HOURS).

The training shop: five categories of ten items, 40 shoppers clicking in their
favourite one. A subject bought Books for two months, then views three Garden
items now. Computed by the whole pipeline (the live model, the "home"
placement's filters and re-rank; ``preview`` skips only the cache), the top
of the block is Garden with the documented decay and Books without it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from personalize.models import Event, Placement, Subject
from personalize.serving.service import preview
from personalize.training import service
from tests.serving.fixtures import grant
from tests.training.conftest import use_strategies

pytestmark = pytest.mark.django_db

TOP = 3
STRATEGIES = {
    "item_knn": "personalize.strategies.item_knn.ItemKNN",
    "ease": "personalize.strategies.ease.EASE",
}


@pytest.fixture
def returning_buyer(shop):
    """Twenty purchases of five Books over the last two months, three Garden views now."""
    catalog = shop["catalog"]
    subject = Subject.objects.create(visitor_id="returning-buyer")
    grant(subject)
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(subject=subject, item=catalog["Books"][n % 5], event_type="purchase",
               timestamp=now - timedelta(days=3 + 3 * n)) for n in range(20)]
        + [Event(subject=subject, item=item, event_type="view",
                 timestamp=now - timedelta(minutes=10 - 3 * n))
           for n, item in enumerate(catalog["Garden"][:3])]
    )
    return subject


def _top_categories(subject: Subject) -> list[str]:
    recommendations, _, _ = preview(subject, "home", limit=8)
    return [rec.item.primary_category for rec in recommendations[:TOP]]


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_three_fresh_views_lead_the_block_with_the_decay_and_not_without(
    settings, returning_buyer, strategy
):
    use_strategies(settings, STRATEGIES)
    Placement.objects.create(name="home", strategy=strategy, limit=8)
    service.train_strategy(strategy)

    assert _top_categories(returning_buyer) == ["Garden"] * TOP  # the documented defaults

    settings.PERSONALIZE = {**settings.PERSONALIZE, "HISTORY_HALF_LIFE_HOURS": {}}
    assert "Garden" not in _top_categories(returning_buyer)  # every event at full weight
