"""subject_history and subject_events: what serving feeds a strategy between trainings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone

from personalize.models import Event, Subject
from personalize.tracking.history import recency_factors, subject_events, subject_history

T0 = datetime(2024, 5, 1, 9, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture
def history_events(items):
    ann, bob = Subject.objects.create(), Subject.objects.create()
    rows = [
        (ann, "sku-1", "view", None, 0),
        (ann, "sku-2", "impression", None, 1),  # no preference: left out
        (ann, "sku-2", "rating", 4.5, 2),
        (ann, "sku-3", "purchase", None, 3),
        (ann, None, "search", None, 4),  # no item: left out
        (ann, "sku-1", "dislike", None, 5),
        (bob, "sku-4", "click", None, 1),
    ]
    Event.objects.bulk_create([
        Event(subject=subject, item=items[sku] if sku else None, event_type=kind, value=value,
              timestamp=T0 + timedelta(hours=hours, microseconds=7 * hours))
        for subject, sku, kind, value, hours in rows
    ])
    return {"ann": ann, "bob": bob, "items": items}


@pytest.fixture
def without_decay(settings):
    """The weights of the event types alone (HISTORY_HALF_LIFE_HOURS off)."""
    settings.PERSONALIZE = {**settings.PERSONALIZE, "HISTORY_HALF_LIFE_HOURS": {}}


def test_preference_events_oldest_first_with_their_weights(history_events, without_decay):
    items = history_events["items"]
    history = subject_history(history_events["ann"].pk)
    assert history.subject_id == history_events["ann"].pk
    assert history.item_ids == [items[sku].pk for sku in ("sku-1", "sku-2", "sku-3", "sku-1")]
    assert history.weights == [1.0, 1.0, 8.0, -4.0]  # a rating counts one interaction
    assert history.ratings == {items["sku-2"].pk: 4.5}


def test_timestamps_are_the_events_epoch_seconds_exactly(history_events):
    history = subject_history(history_events["ann"].pk)
    expected = [(T0 + timedelta(hours=h, microseconds=7 * h)).timestamp() for h in (0, 2, 3, 5)]
    assert history.timestamps == expected


def test_the_limit_keeps_the_latest(history_events):
    items = history_events["items"]
    history = subject_history(history_events["ann"].pk, limit=2)
    assert history.item_ids == [items["sku-3"].pk, items["sku-1"].pk]
    # the compiled query is per limit: the default one is not affected
    assert len(subject_history(history_events["ann"].pk)) == 4


def test_events_carry_each_entrys_type_and_whether_they_are_all(history_events):
    items = history_events["items"]
    events = subject_events(history_events["ann"].pk)
    assert events.event_types == ["view", "rating", "purchase", "dislike"]
    assert "impression" not in events.types and "purchase" in events.types
    assert events.complete
    assert events.items_of(["purchase", "view", "dislike"]) == [items["sku-1"].pk,
                                                                items["sku-3"].pk]
    assert events.items_of(["click"]) == []
    # a type the query did not read (no preference weight): the history cannot tell
    assert events.items_of(["purchase", "impression"]) is None


def test_events_cut_at_the_limit_cannot_tell_what_lies_beyond(history_events):
    assert subject_events(history_events["ann"].pk, limit=4).complete is False
    assert subject_events(history_events["ann"].pk, limit=4).items_of(["view"]) is None
    assert subject_events(history_events["ann"].pk, limit=5).complete is True


def test_another_subject_and_an_unknown_one(history_events):
    assert subject_history(history_events["bob"].pk).weights == [2.0]
    empty = subject_history(10**9)
    assert len(empty) == 0 and empty.ratings == {} and empty.timestamps == []


def test_event_weights_are_read_at_call_time(history_events, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "EXTRA_EVENT_TYPES": {"impression": 0.5}}
    history = subject_history(history_events["ann"].pk)
    assert len(history) == 5 and history.weights[1] == 0.5


def _add(subject, items, *rows):
    Event.objects.bulk_create([
        Event(subject=subject, item=items[sku], event_type=kind, timestamp=T0 + timedelta(hours=h))
        for sku, kind, h in rows
    ])


def test_events_of_a_type_no_longer_configured_are_left_out(items):
    subject = Subject.objects.create()
    _add(subject, items, ("sku-1", "view", 0), ("sku-2", "retired", 1), ("sku-3", "click", 2))
    events = subject_events(subject.pk)
    assert events.history.item_ids == [items["sku-1"].pk, items["sku-3"].pk]
    assert events.event_types == ["view", "click"] and events.complete


def test_unconfigured_events_at_the_limit_do_not_push_out_older_preferences(items, without_decay):
    subject = Subject.objects.create()
    _add(subject, items, ("sku-1", "view", 0), ("sku-2", "click", 1),
         ("sku-3", "retired", 2), ("sku-4", "retired", 3), ("sku-1", "purchase", 4))
    events = subject_events(subject.pk, limit=3)
    # the latest 3 preference events, as if the retired ones were never there
    assert events.history.item_ids == [items["sku-1"].pk, items["sku-2"].pk, items["sku-1"].pk]
    assert events.history.weights == [1.0, 2.0, 8.0]
    assert events.complete is False
    assert subject_events(subject.pk, limit=4).complete is True


def test_no_preference_type_at_all_gives_an_empty_history(history_events, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "EVENT_TYPES": {"view": 0.0, "click": 0.0}}
    events = subject_events(history_events["ann"].pk)
    assert len(events.history) == 0 and events.complete


# --- recency: HISTORY_HALF_LIFE_HOURS -------------------------------------------------

HOUR = 3600.0


def test_recency_factors_halve_per_half_life_of_each_type():
    now = 1_000_000.0
    factors = recency_factors(
        ["purchase", "view", "view", "purchase"],
        [now - 48 * HOUR, now - 12 * HOUR, now, now],
        now, {"purchase": 24.0, "view": 12.0},
    )
    assert np.allclose(factors, [0.25, 0.5, 1.0, 1.0])


def test_recency_factors_keep_types_without_a_half_life_and_future_events_whole():
    now = 1_000_000.0
    factors = recency_factors(["like", "view", "view"], [now - 1000 * HOUR, now - HOUR, now + 60],
                              now, {"like": None, "view": 1.0})
    assert np.allclose(factors, [1.0, 0.5, 1.0])
    assert recency_factors([], [], now, {"view": 1.0}).shape == (0,)
    assert np.array_equal(recency_factors(["view"], [0.0], now, {}), [1.0])


def test_a_long_absence_rescales_instead_of_underflowing():
    now = 1_000_000_000.0
    years = 3 * 365 * 24 * HOUR
    factors = recency_factors(["purchase", "purchase"], [now - years - 24 * HOUR, now - years],
                              now, {"purchase": 24.0})
    # 2 ** -1095 underflows; relative to the newest event the proportions stay
    assert np.allclose(factors, [0.5, 1.0])


def test_serving_weights_are_decayed_by_age_and_type(items, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE,
                            "HISTORY_HALF_LIFE_HOURS": {"purchase": 24.0, "view": 12.0}}
    subject = Subject.objects.create()
    now = timezone.now()
    Event.objects.bulk_create([
        Event(subject=subject, item=items["sku-1"], event_type="purchase",
              timestamp=now - timedelta(days=3)),
        Event(subject=subject, item=items["sku-2"], event_type="view",
              timestamp=now - timedelta(hours=12)),
        Event(subject=subject, item=items["sku-3"], event_type="view",
              timestamp=now - timedelta(seconds=1)),
        Event(subject=subject, item=items["sku-4"], event_type="like",  # no half-life: kept
              timestamp=now - timedelta(days=300)),
    ])
    history = subject_history(subject.pk)
    assert history.item_ids == [items[s].pk for s in ("sku-4", "sku-1", "sku-2", "sku-3")]
    assert np.allclose(history.weights, [4.0, 1.0, 0.5, 1.0], rtol=1e-3)  # 8 / 2**3 = 1


def test_the_documented_defaults_let_three_fresh_views_outweigh_old_purchases(items):
    subject = Subject.objects.create()
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(subject=subject, item=items["sku-1"], event_type="purchase",
               timestamp=now - timedelta(days=3 + n)) for n in range(20)]
        + [Event(subject=subject, item=items["sku-2"], event_type="view",
                 timestamp=now - timedelta(minutes=n)) for n in range(3)]
    )
    events = subject_events(subject.pk)
    weights = np.asarray(events.history.weights)
    kinds = np.asarray(events.event_types)
    assert weights[kinds == "view"].sum() > weights[kinds == "purchase"].sum()
