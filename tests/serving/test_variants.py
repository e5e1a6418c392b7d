"""What a variant changes in its placement's configuration, and what it may not set."""

from __future__ import annotations

import logging

import pytest

from personalize.experiments.assignment import VariantConfig
from personalize.serving.filters import FilterConfig
from personalize.serving.placements import default_config
from personalize.serving.variants import (
    VariantConfigError,
    apply_variant,
    parse_variant_config,
    popular_strategy,
)


def test_a_config_variant_may_override_five_keys():
    assert parse_variant_config({}) == {} and parse_variant_config(None) == {}
    assert parse_variant_config({
        "strategy": "ease", "fallback": "trending", "limit": 4, "diversity": 0.3,
        "filters": {"include_categories": ["Tools"]},
    }) == {"strategy": "ease", "fallback": "trending", "limit": 4, "diversity": 0.3,
           "filters": FilterConfig(include_categories=("Tools",))}


@pytest.mark.parametrize(("raw", "key", "message"), [
    ([], "config", "must be a JSON object"),
    ({"heading": "x"}, "heading", "unknown key; a variant may set diversity, fallback, "
                                  "filters, limit, strategy"),
    ({"strategy": ""}, "strategy", "must be a strategy name of 1 to 64 characters"),
    ({"fallback": 3}, "fallback", "must be a strategy name of 1 to 64 characters"),
    ({"limit": 0}, "limit", "must be a whole number from 1 to 100"),
    ({"limit": 101}, "limit", "must be a whole number from 1 to 100"),
    ({"limit": True}, "limit", "must be a whole number from 1 to 100"),
    ({"diversity": 1.5}, "diversity", "must be a number from 0 to 1"),
    ({"diversity": "high"}, "diversity", "must be a number from 0 to 1"),
    ({"filters": {"colour": "red"}}, "filters.colour", "unknown filter key"),
])
def test_an_invalid_config_names_its_key(raw, key, message):
    with pytest.raises(VariantConfigError) as raised:
        parse_variant_config(raw)
    assert raised.value.key == key and message in raised.value.message


def test_each_kind_of_variant_applied_to_a_placement(settings):
    home = default_config("home")
    assert apply_variant(home, None) is home
    strategy = apply_variant(home, VariantConfig(1, "b", "strategy", "ease"))
    assert strategy.strategy == "ease" and strategy.limit == home.limit
    config = apply_variant(home, VariantConfig(2, "c", "config", config={"limit": 3}))
    assert (config.strategy, config.limit) == (home.strategy, 3)
    assert apply_variant(home, VariantConfig(3, "p", "popular")).strategy == "popular"
    assert apply_variant(home, VariantConfig(4, "h", "holdout")) is home  # served empty
    settings.PERSONALIZE = {**settings.PERSONALIZE, "POPULARITY_STRATEGY": "nowhere",
                            "FALLBACK_STRATEGY": "trending"}
    assert popular_strategy() == "trending"
    assert apply_variant(home, VariantConfig(5, "p", "popular")).strategy == "trending"


def test_an_invalid_stored_config_serves_the_placement_and_logs(caplog):
    home = default_config("home")
    with caplog.at_level(logging.ERROR, logger="personalize.serving.variants"):
        assert apply_variant(home, VariantConfig(9, "bad", "config", config={"limit": -1})) == home
    assert "Variant 'bad' has an invalid configuration (limit:" in caplog.text
