"""The README's strategies trained by ``manage.py personalize_train`` on a shop that only records views."""

from __future__ import annotations

import pytest

pytest.importorskip("personalize_surprise", reason="the personalize-surprise plugin is not installed")

from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
from django.core.management import CommandError, call_command

from personalize.models import Event, Item, ModelVersion, Subject

pytestmark = pytest.mark.django_db

#: The settings example of the plugin's README.
README_STRATEGIES = {
    "popular": "personalize.strategies.popularity.Popularity",
    "svd_big": ("personalize_surprise.SVD", {"n_factors": 200, "n_epochs": 30}),
    "knn_items": ("personalize_surprise.KNNBaseline",
                  {"k": 40, "sim_options": {"name": "pearson_baseline", "user_based": False}}),
}


def _views_only(n_subjects: int = 30, n_items: int = 20, per_subject: int = 6) -> None:
    """Each subject views some items once: every implicit rating is 1."""
    rng = np.random.default_rng(11)
    items = [Item.objects.create(external_id=f"item-{n}", title=f"Item {n}")
             for n in range(n_items)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = []
    for n in range(n_subjects):
        subject = Subject.objects.create(visitor_id=f"viewer-{n}")
        for k, index in enumerate(rng.choice(n_items, size=per_subject, replace=False).tolist()):
            events.append(Event(subject=subject, item=items[index], event_type="view",
                                timestamp=start + timedelta(days=n + k / 10)))
    Event.objects.bulk_create(events)


def test_knn_items_fails_clearly_and_the_others_still_train(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "STRATEGIES": README_STRATEGIES,
                            "LOAD_ENTRY_POINTS": False, "DEFAULT_STRATEGY": "popular",
                            "FALLBACK_STRATEGY": "popular"}
    _views_only()
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=r"^Training failed for knn_items \(1 of 3 strategies"):
        call_command("personalize_train", stdout=out, stderr=err)

    statuses = dict(ModelVersion.objects.values_list("strategy", "status"))
    assert statuses == {"popular": "active", "svd_big": "active", "knn_items": "failed"}
    failed = ModelVersion.objects.get(strategy="knn_items")
    assert failed.note.startswith("Training failed: CannotTrain: KNNBaseline: the "
                                  "pearson_baseline similarity is undefined on these ratings: "
                                  "every training rating is 1 ")
    assert "ZeroDivisionError" in failed.error  # the cause stays in the traceback
    lines = [line.strip() for line in out.getvalue().splitlines() if line.strip()]
    assert any(line.startswith("popular v1: activated") for line in lines)
    assert any(line.startswith("svd_big v1: activated") for line in lines)
    assert "knn_items v1: FAILED" in lines
