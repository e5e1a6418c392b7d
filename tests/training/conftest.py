"""Fixtures for the training tests: a synthetic shop with categories and clicks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from personalize.models import Event, Item, Subject
from personalize.serving import loader
from tests.training import fakes

CATEGORIES = ["Books", "Garden", "Music", "Tools", "Toys"]
ITEMS_PER_CATEGORY = 10
START = datetime(2024, 1, 1, tzinfo=UTC)

FAKE_STRATEGIES = {
    "cooc": "tests.training.fakes.CoCount",
    "factors": "tests.training.fakes.TinyFactors",
}


def use_strategies(settings, strategies=None, **overrides):
    """Switch PERSONALIZE to the fake strategies (plus any overrides)."""
    strategies = strategies or FAKE_STRATEGIES
    first = next(iter(strategies))
    settings.PERSONALIZE = {
        **settings.PERSONALIZE,
        "STRATEGIES": strategies,
        "LOAD_ENTRY_POINTS": False,
        "DEFAULT_STRATEGY": first,
        "FALLBACK_STRATEGY": first,
        **overrides,
    }


def set_options(settings, name, path=None, **options):
    strategies = dict(settings.PERSONALIZE["STRATEGIES"])
    current = strategies[name]
    path = path or (current if isinstance(current, str) else current[0])
    strategies[name] = (path, options) if options else path
    settings.PERSONALIZE = {**settings.PERSONALIZE, "STRATEGIES": strategies}


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """No model loaded, nothing erased, no fit blocked: every test starts like a new process."""
    loader.clear_loaded()
    fakes.RELEASE.clear()
    fakes.STARTED.clear()
    fakes.FAILURES["left"] = 0
    yield
    fakes.RELEASE.set()
    loader.clear_loaded()


@pytest.fixture
def fake_strategies(settings):
    use_strategies(settings)
    return settings


def create_catalog() -> dict[str, list[Item]]:
    """Five categories of ten items each."""
    by_category: dict[str, list[Item]] = {}
    for category in CATEGORIES:
        by_category[category] = [
            Item.objects.create(external_id=f"{category.lower()}-{n}", title=f"{category} {n}",
                                categories=[category])
            for n in range(ITEMS_PER_CATEGORY)
        ]
    return by_category


@pytest.fixture
def catalog(db) -> dict[str, list[Item]]:
    """Five categories of ten items each."""
    return create_catalog()


def make_events(catalog, n_subjects=40, per_subject=8, seed=7, start=START):
    """Each subject clicks items of one favourite category, spread over 60 days."""
    rng = np.random.default_rng(seed)
    events = []
    subjects = []
    for n in range(n_subjects):
        subject = Subject.objects.create(visitor_id=f"visitor-{start.timestamp()}-{n}")
        subjects.append(subject)
        favourite = catalog[CATEGORIES[n % len(CATEGORIES)]]
        chosen = rng.choice(len(favourite), size=per_subject, replace=False)
        days = np.sort(rng.uniform(0, 60, size=per_subject))
        for index, day in zip(chosen.tolist(), days.tolist(), strict=True):
            events.append(Event(subject=subject, item=favourite[index], event_type="click",
                                timestamp=start + timedelta(days=day)))
    Event.objects.bulk_create(events)
    return subjects


@pytest.fixture
def shop(catalog):
    """The catalog plus 40 subjects with 8 clicks each in their favourite category."""
    subjects = make_events(catalog)
    return {"catalog": catalog, "subjects": subjects}
