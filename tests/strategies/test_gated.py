"""Gated: weights per history bucket, the new-item boost, explanations, option validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from personalize.dataset import SECONDS_PER_DAY, Dataset
from personalize.evaluation.breakdown import HISTORY_BUCKETS, bucket_of
from personalize.strategies.base import CannotRecommend
from personalize.strategies.gated import DEFAULT_BUCKETS, Gated
from personalize.strategies.history import History
from tests.strategies.test_hybrid import A, B, Fixed, FixedOptions, strategies

DAY = SECONDS_PER_DAY
#: items 1 and 2 first seen on day 0, item 3 on day 99; the data ends on day 100
DATASET = Dataset.from_arrays(["u", "u", "v", "u"], [1, 2, 3, 1], "view",
                              timestamps=[1.0, 1.0, 99 * DAY, 100 * DAY])
STRANGER = History(item_ids=[99])  # one history item no part knows: bucket 1-2


@dataclass(frozen=True)
class LabelledOptions(FixedOptions):
    label: str = ""


class Labelled(Fixed):
    """Fixed scores whose explanation of any item is the part's label."""

    options_class = LabelledOptions

    def explain(self, artifact, history, item_id):
        return self.options.label


def ids(result):
    return [item for item, _ in result]


def fitted(strategy):
    with strategies(la=(f"{__name__}.Labelled", {"scores": A, "label": "from a"}),
                    lb=(f"{__name__}.Labelled", {"scores": B, "label": "from b"})):
        return strategy.fit(DATASET)


def serve(strategy, history, k=10):
    return strategy.recommend(fitted(strategy), history, k)


def test_default_buckets_are_the_evaluations():
    assert list(DEFAULT_BUCKETS) == [low for _, low, _ in HISTORY_BUCKETS[1:]]
    gated = Gated(strategies={"a": [1, 1, 1, 1, 1]})
    lengths = [0, 1, 2, 3, 5, 6, 20, 21, 400]
    buckets = [gated.bucket(History(item_ids=list(range(n)))) for n in lengths]
    assert buckets == bucket_of(np.asarray(lengths)).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    # distinct items, rated ones included
    assert gated.bucket(History(item_ids=[7, 7, 7], ratings={8: 4.0})) == 1


def test_each_bucket_uses_its_own_weights():
    gated = Gated(strategies={"a": [1, 0, 0, 0, 1], "b": [0, 1, 1, 2, 0]})
    assert ids(serve(gated, History())) == [1, 2, 3, 4]  # a alone
    assert ids(serve(gated, STRANGER)) == [4, 3, 2, 1]  # b alone
    long = History(item_ids=list(range(100, 125)))
    assert ids(serve(gated, long)) == [1, 2, 3, 4]
    mixed = Gated(strategies={"a": [1, 2, 1, 1, 1], "b": [1, 1, 1, 1, 1]})
    # bucket 1-2: 2a + b = 2, 1.6, 1.5, 1
    result = serve(mixed, STRANGER)
    assert ids(result) == [1, 2, 3, 4]
    assert np.allclose([s for _, s in result], [2.0, 1.6, 1.5, 1.0])


def test_a_part_that_cannot_answer_its_bucket_is_skipped():
    gated = Gated(strategies={"none": [1, 1], "b": [1, 1]}, buckets=[1])
    assert ids(serve(gated, History())) == [4, 3, 2, 1]  # "none" refuses an empty history
    alone = Gated(strategies={"none": [1, 1], "b": [0, 1]}, buckets=[1])
    with pytest.raises(CannotRecommend):
        serve(alone, History())


def test_new_items_get_the_content_parts_boost():
    # a: 1, .75, .5, 0; b: 0, .1, .5, 1; item 3 is 1 day old, item 4 never seen
    base = {"strategies": {"a": [1] * 5, "b": [0] * 5}, "content": "b", "new_item_boost": 2.0}
    assert ids(serve(Gated(**base), STRANGER)) == [1, 2, 3, 4]  # no new_item_days: no boost
    result = serve(Gated(**base, new_item_days=5), STRANGER)
    assert ids(result) == [4, 3, 1, 2]  # 4: 0 + 2 * 1; 3: .5 + 2 * .5
    assert np.allclose([s for _, s in result], [2.0, 1.5, 1.0, 0.75])
    assert ids(serve(Gated(**base, new_item_days=0.5), STRANGER)) == [4, 1, 2, 3]
    # a history later than the data moves "now": item 3 is 101 days old then
    later = History(item_ids=[99], timestamps=[200 * DAY])
    assert ids(serve(Gated(**base, new_item_days=50), later)) == [4, 1, 2, 3]


def test_first_seen_is_kept_per_item():
    artifact = fitted(Gated(strategies={"a": [1] * 5}))
    assert artifact["item_ids"].tolist() == [1, 2, 3]
    assert artifact["first_seen"].tolist() == [1.0, 1.0, 99 * DAY]
    assert artifact.meta["reference_time"] == 100 * DAY


def test_explain_names_the_leading_parts_reason():
    gated = Gated(strategies={"la": [1] * 5, "lb": [1] * 5})
    artifact = fitted(gated)
    # la leads items 1 and 2 (1 vs 0, .75 vs .1), lb leads item 4 (0 vs 1)
    assert gated.leading_parts(artifact, STRANGER, [1, 2, 4]) == ["la", "la", "lb"]
    assert gated.explain(artifact, STRANGER, 1) == "from a"
    assert gated.explain(artifact, STRANGER, 4) == "from b"
    assert gated.explain_many(artifact, STRANGER, [4, 2]) == ["from b", "from a"]
    only_b = Gated(strategies={"la": [0] * 5, "lb": [1] * 5})
    assert only_b.leading_parts(fitted(only_b), STRANGER, [1, 4]) == [None, "lb"]
    # no part scores item 1 above 0: the first part with a reason answers
    assert only_b.explain(fitted(only_b), STRANGER, 1) == "from a"


@pytest.mark.parametrize(("options", "message"), [
    ({}, "strategies must name"),
    ({"strategies": {"a": [1, 1]}}, r"strategies\['a'\] must be 5 weights"),
    ({"strategies": {"a": [1, 1, -1, 1, 1]}}, r"strategies\['a'\] must be 5"),
    ({"strategies": {"a": [1, 1, True, 1, 1]}}, r"strategies\['a'\] must be 5"),
    ({"strategies": {"a": 1.0}}, r"strategies\['a'\] must be 5"),
    ({"strategies": {"a": [1, 0, 1, 1, 1]}}, "bucket 1 a positive weight"),
    ({"strategies": {"a": [1, 1]}, "buckets": [3, 3]}, "buckets must be increasing"),
    ({"strategies": {"a": [1, 1]}, "buckets": [0]}, "buckets must be increasing"),
    ({"strategies": {"a": [1] * 5}, "candidates": 0}, "candidates must be"),
    ({"strategies": {"a": [1] * 5}, "content": "b"}, "content must be one of"),
    ({"strategies": {"a": [1] * 5}, "new_item_days": 7}, "new_item_days needs content"),
    ({"strategies": {"a": [1] * 5}, "content": "a", "new_item_days": 0}, "new_item_days must"),
    ({"strategies": {"a": [1] * 5}, "new_item_boost": -1}, "new_item_boost must"),
])
def test_invalid_options_say_which_and_why(options, message):
    with pytest.raises(ValueError, match=message):
        Gated(**options)


def test_an_unknown_part_is_reported_by_the_check():
    from personalize.checks import check_strategies

    with strategies(bad=("personalize.strategies.gated.Gated", {"strategies": {"zz": [1] * 5}})):
        assert "personalize.E021" in [m.id for m in check_strategies()]


def test_explain_of_string_ids_longer_than_the_candidates():
    from personalize.strategies.hybrid import normalised_part_scores

    gated = Gated(strategies={"a": [1] * 5})
    artifact = fitted(gated)
    answered, candidates, scores = normalised_part_scores(
        artifact, STRANGER, ["a"], 2, extra=["a-much-longer-id"]
    )
    assert answered == ["a"]
    assert "a-much-longer-id" in candidates.tolist()
    assert scores.shape == (1, len(candidates))
