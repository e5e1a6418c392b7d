"""Placements per process: bounded memory, existence checks, creation with the defaults."""

from __future__ import annotations

import logging

import pytest

from personalize.models import Placement
from personalize.serving import placements
from tests.serving.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


def test_the_memory_of_placements_is_bounded(monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(placements, "MAX_HELD", 3)
    Placement.objects.create(name="home", limit=4)
    placements.get_placement("home")
    for n in range(10):
        placements.get_placement(f"other-{n}")
        placements.get_placement("home")  # used all along: never the one dropped
    assert len(placements._configs) == 3
    assert list(placements._configs)[-1] == "home"
    with django_assert_num_queries(0):
        assert placements.get_placement("home").limit == 4
    with django_assert_num_queries(1):  # dropped long ago: read again
        assert not placements.get_placement("other-0").configured


def test_warnings_about_unknown_names_are_bounded(monkeypatch, caplog):
    monkeypatch.setattr(placements, "MAX_HELD", 3)
    with caplog.at_level(logging.WARNING, logger="personalize.serving.placements"):
        for n in range(10):
            placements.get_placement(f"name-{n}")
            placements.get_placement(f"name-{n}")
    assert len(placements._warned) <= 3
    assert len([r for r in caplog.records if "name-0" in r.getMessage()]) == 1


def test_placement_exists_remembers_nothing_about_unknown_names(django_assert_num_queries):
    Placement.objects.create(name="home")
    assert placements.placement_exists("home")
    assert not placements.placement_exists("nope")
    assert placements._configs == {}
    placements.get_placement("home")
    with django_assert_num_queries(0):
        assert placements.placement_exists("home")


def test_unknown_placement_message_lists_a_bounded_number(monkeypatch):
    monkeypatch.setattr(placements, "MAX_NAMED", 2)
    for name in ("c", "a", "b"):
        Placement.objects.create(name=name)
    assert placements.unknown_placement_message("zz") == (
        "Unknown placement 'zz'; known placements: a, b and 1 more.")


def test_ensure_placement_creates_once_with_the_defaults(settings, django_assert_num_queries):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "DEFAULT_LIMIT": 5, "CACHE_TTL": 30}
    placements.get_placement("shelf")  # served with the defaults, held as such
    placements.ensure_placement("shelf")
    row = Placement.objects.get(name="shelf")
    assert (row.limit, row.cache_ttl, row.heading) == (5, 30, "")
    config = placements.get_placement("shelf")
    assert config.configured and config.heading == "Recommended for You" and config.limit == 5
    with django_assert_num_queries(0):
        placements.ensure_placement("shelf")
    assert Placement.objects.filter(name="shelf").count() == 1


def test_ensure_placement_keeps_a_limit_the_admin_accepts(settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "DEFAULT_LIMIT": 150, "MAX_LIMIT": 200}
    placements.ensure_placement("wide")
    assert Placement.objects.get(name="wide").limit == 100
