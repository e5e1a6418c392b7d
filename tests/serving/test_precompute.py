"""Precomputed top-N lists: scored in chunks over workers, served only while current."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest

from personalize.serving import precompute
from personalize.serving import tasks as serving_tasks
from personalize.serving.loader import get_active_model
from personalize.signals import event_recorded
from personalize.tracking.history import subject_history
from personalize.training import tasks
from tests.training.conftest import make_events


def test_precompute_top_n_in_chunks(fake_strategies, shop, settings):
    tasks.train_strategy.delay("cooc").get()
    subjects = shop["subjects"]
    with mock.patch.object(precompute, "active_subject_ids", return_value=[s.pk for s in subjects]):
        summary = serving_tasks.precompute_top_n.delay("cooc", k=5, chunk_size=7).get()
    assert summary == {"subjects": 40, "chunks": 6}

    stored = precompute.get_precomputed("cooc", subjects[0].pk)
    live = get_active_model("cooc")
    expected = live.strategy.recommend(live.artifact, subject_history(subjects[0].pk), 5)
    assert stored == [(item, pytest.approx(score)) for item, score in expected]

    event_recorded.send(sender=None, subject_ids={subjects[0].pk}, item_ids=set(), count=1)
    assert precompute.get_precomputed("cooc", subjects[0].pk) is None
    assert precompute.get_precomputed("cooc", subjects[1].pk) is not None


def test_precomputed_lists_of_a_retired_version_are_not_served(fake_strategies, shop):
    tasks.train_strategy.delay("cooc").get()
    subject = shop["subjects"][0]
    precompute.precompute("cooc", [subject.pk], 5)
    assert precompute.get_precomputed("cooc", subject.pk)
    tasks.train_strategy.delay("cooc", force=True).get()
    assert precompute.get_precomputed("cooc", subject.pk) is None


def test_active_subject_ids_are_the_recent_ones(catalog):
    old = make_events(catalog, n_subjects=2)  # 2024
    recent = make_events(catalog, n_subjects=2, start=datetime.now(tz=UTC))
    assert precompute.active_subject_ids(days=1) == sorted(s.pk for s in recent)
    assert not set(precompute.active_subject_ids(days=1)) & {s.pk for s in old}
