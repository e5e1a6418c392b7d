"""The snapshot of the site's own events: the database reader of a Dataset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models.signals import post_init

from personalize.models import Event, Item, Subject
from personalize.training.snapshot import database_snapshot


def dense(matrix):
    return matrix.toarray()


T0 = datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


@pytest.fixture
def site(db):
    shirt = Item.objects.create(external_id="shirt", title="Shirt", text="A red shirt",
                                categories=["clothes", "red"], attributes={"price": 10})
    shoe = Item.objects.create(external_id="shoe", title="Shoe", categories=["shoes"])
    hat = Item.objects.create(external_id="hat", title="Hat")  # in the catalog, no events
    Item.objects.create(external_id="gone", title="Gone", available=False)
    ann, bob, bot = (Subject.objects.create() for _ in range(3))
    rows = [
        (ann, shirt, "view", None, T0),
        (ann, shirt, "purchase", None, T0 + timedelta(hours=1)),
        (ann, shoe, "rating", 4.5, T0 + timedelta(days=1)),
        (bob, shoe, "click", None, T0 + timedelta(days=2)),
        (bob, shirt, "impression", None, T0 + timedelta(days=2)),
        (bot, shoe, "view", None, T0 + timedelta(days=3)),
    ]
    Event.objects.bulk_create([
        Event(subject=s, item=i, event_type=t, value=v, timestamp=ts) for s, i, t, v, ts in rows
    ])
    Event.objects.create(subject=bob, item=None, event_type="search", timestamp=T0)
    return {"shirt": shirt, "shoe": shoe, "hat": hat, "ann": ann, "bob": bob, "bot": bot}


def test_uses_primary_keys_and_weights(site):
    ds = database_snapshot()
    ann, bob, bot = site["ann"].pk, site["bob"].pk, site["bot"].pk
    shirt, shoe, hat = site["shirt"].pk, site["shoe"].pk, site["hat"].pk
    assert ds.subject_ids.tolist() == sorted([ann, bob, bot])
    assert ds.item_ids.tolist() == sorted([shirt, shoe, hat])
    matrix = dense(ds.interactions)
    row = ds.subject_index()
    col = ds.item_index()
    assert matrix[row[ann], col[shirt]] == 9.0  # view 1 + purchase 8
    assert matrix[row[ann], col[shoe]] == 1.0  # a rating counts 1
    assert matrix[row[bob], col[shoe]] == 2.0
    assert matrix[row[bob], col[shirt]] == 0.0  # impressions are not preferences
    assert dense(ds.ratings)[row[ann], col[shoe]] == 4.5
    assert ds.meta["source"] == "database"


def test_reads_item_content(site):
    ds = database_snapshot()
    col = ds.item_index()
    shirt = col[site["shirt"].pk]
    assert ds.item_titles[shirt] == "Shirt"
    assert ds.item_texts[shirt] == "A red shirt"
    assert ds.item_texts[col[site["shoe"].pk]] == "Shoe"  # no text: the title
    assert ds.item_categories[shirt] == ["clothes", "red"]
    assert ds.item_attributes[shirt] == {"price": 10}
    assert ds.item_available.all()
    only = database_snapshot(include_catalog=False)
    assert site["hat"].pk not in only.item_ids.tolist()


def test_timestamps_are_epoch_seconds(site):
    ds = database_snapshot()
    assert ds.events.timestamp.min() == pytest.approx(T0.timestamp(), abs=1e-3)
    assert ds.events.timestamp.max() == pytest.approx(
        (T0 + timedelta(days=3)).timestamp(), abs=1e-3)


def test_window_and_types(site):
    ds = database_snapshot(since=T0 + timedelta(minutes=30), until=T0 + timedelta(days=2))
    assert len(ds.events) == 2  # the purchase and the rating
    assert ds.meta["until"] == (T0 + timedelta(days=2)).isoformat()
    purchases = database_snapshot(event_types=["purchase"])
    assert purchases.event_types == ["purchase"]
    assert len(purchases.events) == 1


def test_filters_flagged_subjects(site):
    ds = database_snapshot(exclude_subjects=[site["bot"].pk])
    assert site["bot"].pk not in ds.subject_ids.tolist()


def test_never_builds_a_model_per_event(site):
    built = []

    def count(sender, **kwargs):
        built.append(sender)

    post_init.connect(count, sender=Event)
    try:
        database_snapshot(chunk_size=2)
    finally:
        post_init.disconnect(count, sender=Event)
    assert built == []


def test_small_chunks_give_the_same_snapshot(site):
    big = database_snapshot(chunk_size=1000)
    small = database_snapshot(chunk_size=1)
    assert (dense(big.interactions) == dense(small.interactions)).all()
    assert big.events.timestamp.tolist() == small.events.timestamp.tolist()


def test_pages_over_gaps_in_the_keys(site):
    # deleted events leave gaps; pages of 2 keys hold 0, 1 or 2 events, of mixed types
    whole = database_snapshot()
    Event.objects.filter(event_type="purchase").delete()
    Event.objects.create(subject=site["bob"], item=site["hat"], event_type="rating", value=2.5,
                         timestamp=T0 + timedelta(days=4))
    for chunk_size in (1, 2, 3, 1000):
        ds = database_snapshot(chunk_size=chunk_size)
        assert len(ds.events) == len(whole.events)  # a purchase out, a rating in
        assert sorted(ds.event_types) == ["click", "rating", "view"]
        col, row = ds.item_index(), ds.subject_index()
        assert dense(ds.ratings)[row[site["bob"].pk], col[site["hat"].pk]] == 2.5
        assert dense(ds.interactions)[row[site["ann"].pk], col[site["shirt"].pk]] == 1.0
        assert ds.events.timestamp.max() == pytest.approx((T0 + timedelta(days=4)).timestamp(),
                                                          abs=1e-3)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_reads_one_snapshot():
    # no test transaction around it: the snapshot opens its own (REPEATABLE READ
    # on PostgreSQL, set as the transaction's first statement)
    from django.db import connection

    item = Item.objects.create(external_id="pen", title="Pen")
    subject = Subject.objects.create()
    Event.objects.create(subject=subject, item=item, event_type="view", timestamp=T0)
    ds = database_snapshot(chunk_size=1)
    assert len(ds.events) == 1 and ds.item_titles == ["Pen"]
    assert not connection.in_atomic_block


def test_times_are_exact(site):
    ds = database_snapshot()
    stored = sorted(moment.timestamp() for moment in Event.objects.filter(
        item__isnull=False, event_type__in=ds.event_types).values_list("timestamp", flat=True))
    assert ds.events.timestamp.tolist() == stored


def test_with_no_events(db):
    Item.objects.create(external_id="lonely", title="Lonely")
    ds = database_snapshot()
    assert ds.n_subjects == 0
    assert ds.n_items == 1
