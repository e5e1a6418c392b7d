"""Fixtures for the consent tests."""

from __future__ import annotations

import itertools

import pytest

from personalize.models import Event, Item, Subject

_counter = itertools.count()


@pytest.fixture
def subject(db):
    return Subject.objects.create(visitor_id=f"visitor-{next(_counter)}")


@pytest.fixture
def items(db):
    return [Item.objects.create(external_id=f"item-{next(_counter)}", title=f"Item {i}",
                                categories=["books"]) for i in range(3)]


@pytest.fixture
def make_events(items):
    def make(subject, n=3, **fields):
        return [
            Event.objects.create(subject=subject, item=items[i % len(items)], event_type="view",
                                 context={"q": "secret phrase"}, **fields)
            for i in range(n)
        ]
    return make
