"""Business filters: parsing the placement JSON and the catalog masks."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from personalize.models import Event, Subject
from personalize.serving.catalog import build_index
from personalize.serving.filters import (
    FILTER_KEYS,
    FilterConfig,
    FilterError,
    allowed_mask,
    blocked_pks,
    parse_filters,
    pinned_pks,
    subject_excluded_items,
)
from tests.serving.fixtures import *  # noqa: F403


def test_defaults():
    assert parse_filters(None) == parse_filters({}) == FilterConfig()
    assert FilterConfig().exclude_event_types == ("purchase",)
    assert FilterConfig().available_only and FilterConfig().exclude_current_item
    assert {
        "exclude_event_types", "exclude_window_days", "available_only", "include_categories",
        "exclude_categories", "pinned", "blocked", "exclude_current_item"} == FILTER_KEYS


def test_parses_every_key():
    parsed = parse_filters({
        "exclude_event_types": ["purchase", "view"], "exclude_window_days": 30,
        "available_only": False, "include_categories": ["A"], "exclude_categories": ["B"],
        "pinned": ["x"], "blocked": ["y"], "exclude_current_item": False})
    assert parsed == FilterConfig(("purchase", "view"), 30.0, False, ("A",), ("B",), ("x",),
                                  ("y",), False)


@pytest.mark.parametrize(("raw", "key", "message"), [
    ([], "filters", "must be a JSON object"),
    ({"exclude": []}, "exclude", "unknown filter key"),
    ({"pinned": "x"}, "pinned", "must be a list of non-empty strings"),
    ({"blocked": [1]}, "blocked", "must be a list of non-empty strings"),
    ({"include_categories": [""]}, "include_categories", "must be a list of non-empty strings"),
    ({"available_only": "yes"}, "available_only", "must be true or false"),
    ({"exclude_window_days": 0}, "exclude_window_days", "must be a positive number or null"),
    ({"exclude_window_days": True}, "exclude_window_days", "must be a positive number or null"),
    ({"exclude_event_types": ["bought"]}, "exclude_event_types", "'bought' is not a configured"),
])
def test_invalid_values_name_the_key(raw, key, message):
    with pytest.raises(FilterError) as caught:
        parse_filters(raw)
    assert caught.value.key == key
    assert message in str(caught.value)


def test_window_null_means_ever():
    assert parse_filters({"exclude_window_days": None}).exclude_window_days is None


@pytest.mark.django_db
def test_masks(catalog_items):
    index = build_index()
    c = catalog_items

    def shown(filters, **kw):
        mask = allowed_mask(index, filters, **kw)
        return {ext for ext, pk in index.external_ids.items() if mask[index.positions([pk])[0][0]]}

    everything = set(catalog_items)
    assert shown(FilterConfig()) == everything - {"t6"}
    assert shown(FilterConfig(available_only=False)) == everything
    assert shown(FilterConfig(include_categories=("Tools", "Nope"))) == {"t1", "t2", "t3", "t4",
                                                                         "t5"}
    assert shown(FilterConfig(exclude_categories=("Tools",))) == {f"b{n}" for n in range(1, 7)} \
        | {"g1"}
    assert "b2" not in shown(FilterConfig(blocked=("b2", "missing")))
    assert "b3" not in shown(FilterConfig(), current_item=c["b3"].pk)
    assert "b3" in shown(FilterConfig(exclude_current_item=False), current_item=c["b3"].pk)
    assert "b4" not in shown(FilterConfig(), excluded_pks=[c["b4"].pk])
    assert pinned_pks(index, FilterConfig(pinned=("t2", "gone", "b1", "t2"))) == [
        c["t2"].pk, c["b1"].pk]
    assert blocked_pks(index, FilterConfig(blocked=("g1",))) == [c["g1"].pk]


@pytest.mark.django_db
def test_subject_excluded_items_by_type_and_window(catalog_items):
    c = catalog_items
    subject = Subject.objects.create()
    Event.objects.create(subject=subject, item=c["b1"], event_type="purchase")
    Event.objects.create(subject=subject, item=c["b2"], event_type="view")
    Event.objects.create(subject=subject, item=c["b3"], event_type="purchase",
                         timestamp=timezone.now() - timedelta(days=40))
    Event.objects.create(subject=Subject.objects.create(), item=c["b4"], event_type="purchase")
    assert set(subject_excluded_items(subject.pk, FilterConfig())) == {c["b1"].pk, c["b3"].pk}
    recent = FilterConfig(exclude_event_types=("purchase", "view"), exclude_window_days=30)
    assert set(subject_excluded_items(subject.pk, recent)) == {c["b1"].pk, c["b2"].pk}
    assert subject_excluded_items(subject.pk, FilterConfig(exclude_event_types=())) == []


@pytest.mark.django_db
def test_subject_excluded_items_skip_events_without_an_item_and_repeat_none(catalog_items):
    c = catalog_items
    subject = Subject.objects.create()
    for _ in range(3):
        Event.objects.create(subject=subject, item=c["t1"], event_type="purchase")
    Event.objects.create(subject=subject, item=None, event_type="purchase")
    Event.objects.create(subject=subject, item=c["t2"], event_type="add_to_cart")
    bought = FilterConfig(exclude_event_types=("purchase", "add_to_cart"))
    assert sorted(subject_excluded_items(subject.pk, bought)) == sorted([c["t1"].pk, c["t2"].pk])


@pytest.mark.django_db
def test_subject_excluded_items_come_from_the_history_when_it_holds_them_all(
        catalog_items, django_assert_num_queries):
    from personalize.tracking.history import subject_events

    c = catalog_items
    subject = Subject.objects.create()
    Event.objects.create(subject=subject, item=c["b1"], event_type="purchase")
    Event.objects.create(subject=subject, item=c["b2"], event_type="view")
    Event.objects.create(subject=subject, item=c["b3"], event_type="impression")
    Event.objects.create(subject=subject, item=c["b1"], event_type="purchase")
    events = subject_events(subject.pk)
    bought = FilterConfig(exclude_event_types=("purchase", "view"))
    with django_assert_num_queries(0):
        known = subject_excluded_items(subject.pk, bought, events)
    assert sorted(known) == sorted(subject_excluded_items(subject.pk, bought))
    assert sorted(known) == sorted([c["b1"].pk, c["b2"].pk])
    # what the history cannot answer goes to the database
    for filters, history in [
        (FilterConfig(exclude_event_types=("impression",)), events),  # weight 0: not read
        (FilterConfig(exclude_window_days=30), events),
        (bought, subject_events(subject.pk, limit=2)),  # cut at its limit
    ]:
        with django_assert_num_queries(1):
            answer = subject_excluded_items(subject.pk, filters, history)
        assert sorted(answer) == sorted(subject_excluded_items(subject.pk, filters))
    assert subject_excluded_items(subject.pk, FilterConfig(exclude_event_types=("impression",)),
                                  events) == [c["b3"].pk]


@pytest.mark.django_db
def test_the_placement_mask_is_kept_per_index_but_exclusions_are_not(catalog_items):
    c = catalog_items
    index = build_index()
    filters = FilterConfig(blocked=("b2",))
    first = allowed_mask(index, filters, excluded_pks=[c["b1"].pk])
    second = allowed_mask(index, filters)
    rows = {ext: index.positions([pk])[0][0] for ext, pk in index.external_ids.items()}
    assert not first[rows["b1"]] and second[rows["b1"]]  # one visitor's exclusions stay theirs
    assert not first[rows["b2"]] and not second[rows["b2"]]
    second[rows["b3"]] = False  # the caller owns its mask
    assert allowed_mask(index, filters)[rows["b3"]]
    assert list(index.memo) == [("allowed", filters)]


@pytest.mark.django_db
def test_index_handles_an_empty_catalog():
    index = build_index()
    assert len(index) == 0
    assert allowed_mask(index, FilterConfig()).shape == (0,)
    assert index.positions([1])[0].size == 0
    assert np.asarray(index.in_categories(["x"])).shape == (0,)
