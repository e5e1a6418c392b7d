"""Between trainings: new events change a subject's recommendations at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from personalize.models import Event, Subject
from personalize.serving.loader import get_active_model
from personalize.tracking.history import subject_history
from personalize.training import service
from tests.training.conftest import use_strategies

pytestmark = pytest.mark.django_db


def _top10(name: str, subject: Subject) -> list[int]:
    """What serving does: the live model, scored on the latest history from the database.

    Only items with a positive score count: a strategy may pad a short list
    with zero-score items, which are not recommendations on any evidence.
    """
    live = get_active_model(name)
    scored = live.strategy.recommend(live.artifact, subject_history(subject.pk), 10)
    return [item for item, score in scored if score > 1e-6]


def _click(subject, items, start):
    for n, item in enumerate(items):
        Event.objects.create(subject=subject, item=item, event_type="click",
                             timestamp=start + timedelta(minutes=n))


STRATEGIES = {
    "item_knn": "personalize.strategies.item_knn.ItemKNN",
    "ease": "personalize.strategies.ease.EASE",
    "factors": "tests.training.fakes.TinyFactors",  # a factor model folding in its history
}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_three_clicks_on_a_new_category_move_it_into_the_top_10(settings, shop, strategy):
    use_strategies(settings, STRATEGIES)
    service.train_strategy(strategy)
    catalog = shop["catalog"]
    garden = {item.pk for item in catalog["Garden"]}
    subject = Subject.objects.create(visitor_id="newcomer")
    now = timezone.now()
    _click(subject, catalog["Books"][:4], now - timedelta(hours=2))

    before = _top10(strategy, subject)
    assert before and not garden & set(before)

    _click(subject, catalog["Garden"][:3], now - timedelta(minutes=5))
    after = _top10(strategy, subject)

    assert len(garden & set(after)) >= 3
    assert not {item.pk for item in catalog["Garden"][:3]} & set(after)  # clicked: not again
    assert get_active_model(strategy).version == 1  # no retraining happened
