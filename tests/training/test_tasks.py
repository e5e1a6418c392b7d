"""Celery tasks (eager here; tests/training/test_worker.py runs a real worker)."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import numpy as np
import pytest
from celery.schedules import crontab
from django.core.cache import cache
from django.db import OperationalError

from personalize.models import Item, ModelVersion, Subject
from personalize.serving.loader import get_active_model
from personalize.signals import event_recorded, items_changed
from personalize.strategies.history import History
from personalize.training import embedding, receivers, tasks, triggers
from personalize.training.locks import training_lock
from personalize.training.schedule import beat_schedule
from tests.training import fakes
from tests.training.conftest import make_events, set_options, use_strategies

pytestmark = pytest.mark.django_db


def test_train_strategy_task_returns_a_summary(fake_strategies, shop):
    result = tasks.train_strategy.delay("cooc").get()
    assert result["strategy"] == "cooc" and result["version"] == 1
    assert result["status"] == "active" and result["metrics"]["ndcg@10"] > 0
    assert result["note"] == "No live version: activated."


def test_train_strategy_task_reports_already_running(fake_strategies, shop):
    with training_lock("cooc"):
        result = tasks.train_strategy.delay("cooc").get()
    assert result == {"strategy": "cooc", "status": "already running"}
    assert not ModelVersion.objects.exists()


def test_train_strategy_retries_transient_errors(fake_strategies, shop, settings):
    set_options(settings, "cooc", fail="operational-once")
    fakes.FAILURES["left"] = 1
    task = tasks.train_strategy
    with mock.patch.object(task, "retry", wraps=task.retry) as retry:
        # throw=False: with eager propagation Celery raises Retry instead of re-running
        result = tasks.train_strategy.apply(args=["cooc"], throw=False).get()
    assert retry.call_count == 1
    assert result["status"] == "active" and result["version"] == 2
    assert ModelVersion.objects.get(version=1).status == "failed"


def test_transient_errors_are_the_ones_retried():
    retried = tasks.train_strategy.autoretry_for
    assert OperationalError in retried
    from django.db import IntegrityError
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisError

    assert BrokerError in retried and RedisError in retried
    assert not any(issubclass(IntegrityError, error) for error in retried)
    assert tasks.train_strategy.retry_backoff and tasks.train_strategy.acks_late


def test_train_all_trains_every_configured_strategy(fake_strategies, shop):
    assert tasks.train_all.delay().get() == ["cooc", "factors"]
    assert set(ModelVersion.objects.values_list("strategy", "status")) == {
        ("cooc", "active"), ("factors", "active")}


def test_threshold_trigger_retrains_once_enough_events_arrived(fake_strategies, shop, catalog,
                                                               settings):
    use_strategies(settings, RETRAIN_AFTER_EVENTS=10)
    tasks.train_all.delay().get()
    assert tasks.check_retrain_thresholds.delay().get() == []

    new = make_events(catalog, n_subjects=1, per_subject=6, start=datetime(2024, 3, 5, tzinfo=UTC))
    event_recorded.send(sender=None, subject_ids={new[0].pk}, item_ids=set(), count=6)
    assert triggers.events_since_training("cooc") == 6
    assert tasks.check_retrain_thresholds.delay().get() == []

    more = make_events(catalog, n_subjects=1, per_subject=6, start=datetime(2024, 3, 6, tzinfo=UTC))
    event_recorded.send(sender=None, subject_ids={more[0].pk}, item_ids=set(), count=6)
    assert tasks.check_retrain_thresholds.delay().get() == ["cooc", "factors"]
    assert ModelVersion.objects.filter(version=2, status="active").count() == 2
    assert triggers.events_since_training("cooc") == 0


def test_threshold_falls_back_to_the_database_when_the_cache_forgot(fake_strategies, shop,
                                                                    catalog, settings):
    use_strategies(settings, RETRAIN_AFTER_EVENTS=10)
    tasks.train_strategy.delay("cooc").get()
    make_events(catalog, n_subjects=2, per_subject=6, start=datetime(2024, 3, 5, tzinfo=UTC))
    cache.clear()  # a Redis restart: counter and marks are gone

    assert triggers.events_since_training("cooc", limit=10) == 10  # counted with a LIMIT
    assert triggers.events_since_training("cooc") == 12
    assert "cooc" in tasks.check_retrain_thresholds.delay().get()


def test_threshold_never_queues_a_strategy_twice(fake_strategies, shop, settings):
    use_strategies(settings, RETRAIN_AFTER_EVENTS=10)
    with mock.patch.object(tasks.train_strategy, "delay") as delay:
        assert tasks.check_retrain_thresholds.delay().get() == ["cooc", "factors"]
        assert tasks.check_retrain_thresholds.delay().get() == []  # queued, not started yet
    assert delay.call_count == 2
    cache.clear()  # the queued marks expire
    with training_lock("cooc"):
        assert triggers.due_strategies() == ["factors"]  # running: skipped


def test_threshold_disabled(fake_strategies, shop, settings):
    use_strategies(settings, RETRAIN_AFTER_EVENTS=None)
    assert tasks.check_retrain_thresholds.delay().get() == []


@pytest.fixture
def embedder(settings, shop):
    use_strategies(settings, {"content": "tests.training.fakes.Embedder",
                              "cooc": "tests.training.fakes.CoCount"})
    tasks.train_strategy.delay("content").get()
    return settings


def test_embed_items_makes_a_new_item_recommendable_before_training(embedder, catalog):
    garden = catalog["Garden"]
    new = Item.objects.create(external_id="garden-new", title="New hose", categories=["Garden"])
    assert new.pk not in get_active_model("content").artifact.index_of("item_ids")

    result = tasks.embed_items.delay([new.pk]).get()

    assert result == {"items": 1, "strategies": ["content"], "chunks": 1}
    live = get_active_model("content")
    assert live.version == 2
    version = ModelVersion.objects.get(strategy="content", version=2)
    assert version.status == "active" and version.parameters["derived_from"] == 1
    assert version.note == "v1 with 1 new or changed items embedded."
    recommended = live.strategy.recommend(live.artifact, History(item_ids=[garden[0].pk]), 20)
    assert new.pk in [item for item, _ in recommended]
    assert ModelVersion.objects.get(strategy="content", version=1).status == "retired"


def test_embedding_a_large_catalog_is_split_into_a_chord(embedder, catalog):
    new = [Item.objects.create(external_id=f"toy-new-{n}", categories=["Toys"]) for n in range(5)]
    result = tasks.embed_items.delay([i.pk for i in new], chunk_size=2).get()
    assert result["chunks"] == 3
    live = get_active_model("content")
    assert live.version == 2  # one merge, one new version, not one per chunk
    ids = live.artifact["item_ids"].tolist()
    assert all(item.pk in ids for item in new) and len(ids) == len(set(ids)) == 55
    toys = live.artifact["item_vectors"][[ids.index(i.pk) for i in new]]
    assert np.all(toys == toys[0]) and toys[0][0] == sum(map(ord, "Toys")) % 97


def test_changed_items_are_embedded_through_the_signal_and_the_catalog_hook(embedder, catalog):
    new = Item.objects.create(external_id="book-new", categories=["Books"])
    items_changed.send(sender=Item, item_ids=[new.pk])
    assert new.pk in get_active_model("content").artifact.index_of("item_ids")

    from personalize.catalog.sync import item_changed_hooks

    assert receivers.on_item_changed in item_changed_hooks
    other = Item.objects.create(external_id="book-new-2", categories=["Books"])
    receivers.on_item_changed(other)
    assert other.pk in get_active_model("content").artifact.index_of("item_ids")
    assert get_active_model("content").version == 3


def test_item_changes_are_debounced_into_one_task(embedder, catalog):
    assert embedding.queue_pending([1, 2]) is True
    assert embedding.queue_pending([3]) is False  # the queued task takes these too
    assert embedding.take_pending() == [1, 2, 3]
    assert embedding.take_pending() == []
    with mock.patch.object(tasks.embed_pending, "apply_async") as queued:
        receivers.on_items_changed(item_ids=[4])
        receivers.on_items_changed(item_ids=[5])
    assert queued.call_count == 1
    assert queued.call_args.kwargs == {"countdown": 10.0}
    assert embedding.take_pending() == [4, 5]


def test_no_embedding_strategy_means_nothing_is_queued(fake_strategies, shop):
    with mock.patch.object(tasks.embed_pending, "apply_async") as queued:
        assert embedding.queue_pending([1]) is False
        receivers.on_items_changed(item_ids=[2])
    queued.assert_not_called()
    assert tasks.embed_items.delay([1]).get() == {"items": 1, "strategies": [], "chunks": 0}


def test_beat_schedule_defaults_and_overrides(settings):
    entries = beat_schedule()
    assert entries["personalize-train-all"] == {
        "task": "personalize.training.tasks.train_all", "schedule": crontab(hour=3, minute=0)}
    assert entries["personalize-retrain-check"]["schedule"] == 300.0
    assert entries["personalize-retrain-check"]["task"] == (
        "personalize.training.tasks.check_retrain_thresholds")
    assert entries["personalize-purge-expired-events"]["task"] == (
        "personalize.consent.tasks.purge_expired_events")

    assert entries["personalize-sync-catalog"] == {
        "task": "personalize.catalog.tasks.sync_catalog", "schedule": crontab(hour=2, minute=30)}

    custom = beat_schedule({"TRAINING_SCHEDULE": {"hour": 1, "minute": 15, "day_of_week": "sun"},
                            "RETRAIN_AFTER_EVENTS": None})
    assert custom["personalize-train-all"]["schedule"] == crontab(hour=1, minute=15,
                                                                  day_of_week="sun")
    assert "personalize-retrain-check" not in custom
    assert "personalize-sync-catalog" not in custom  # no CATALOG in that config
    hourly = beat_schedule({"CATALOG": {"shop.Product": {}}, "CATALOG_SYNC_SCHEDULE": {"minute": 5}})
    assert hourly["personalize-sync-catalog"]["schedule"] == crontab(minute=5)
    assert "personalize-sync-catalog" not in beat_schedule(
        {"CATALOG": {"shop.Product": {}}, "CATALOG_SYNC_SCHEDULE": None})


def test_every_scheduled_task_is_registered():
    from tests.testapp.celery import app

    app.loader.import_default_modules()
    for entry in beat_schedule().values():
        assert entry["task"] in app.tasks, entry["task"]


def test_subject_model_is_untouched_by_training(fake_strategies, shop):
    before = Subject.objects.count()
    tasks.train_all.delay().get()
    assert Subject.objects.count() == before


@pytest.mark.slow  # loads the sentence-transformers model
def test_embed_items_with_the_real_embeddings_plugin(settings, shop, catalog):
    pytest.importorskip("personalize_embeddings")
    use_strategies(settings, {"embeddings": "personalize_embeddings.strategy.Embeddings"})
    assert tasks.train_strategy.delay("embeddings").get()["status"] == "active"
    assert embedding.embedding_strategy_names() == ["embeddings"]
    new = Item.objects.create(external_id="garden-hose", title="Garden hose",
                              text="A green garden hose for watering plants",
                              categories=["Garden"])

    tasks.embed_items.delay([new.pk]).get()

    live = get_active_model("embeddings")
    assert live.version == 2 and new.pk in live.artifact.index_of("item_ids")
    assert live.artifact["vectors"].shape[0] == len(live.artifact["item_ids"]) == 51
    garden = {item.pk for item in catalog["Garden"]}
    similar = [item for item, _ in live.strategy.similar(live.artifact, new.pk, 5)]
    assert len(similar) == 5 and len(garden & set(similar)) >= 4


def test_a_merge_blocked_by_a_running_training_keeps_its_parts_for_the_retry(embedder, catalog):
    from personalize.training.locks import TrainingInProgress
    from personalize.training.storage import artifact_storage

    new = Item.objects.create(external_id="tool-new", categories=["Tools"])
    part = embedding.embed_part("content", [new.pk])
    with training_lock("content"), pytest.raises(TrainingInProgress):
        embedding.merge_parts("content", [part])
    assert artifact_storage().exists(part)
    assert embedding.merge_parts("content", [part]).version == 2
    assert not artifact_storage().exists(part)
    assert new.pk in get_active_model("content").artifact.index_of("item_ids")


def test_items_that_come_back_unchanged_make_no_new_version(embedder, catalog):
    tasks.embed_items.delay([item.pk for item in catalog["Garden"][:3]]).get()
    assert list(ModelVersion.objects.filter(strategy="content").values_list(
        "version", flat=True)) == [1]
    assert get_active_model("content").version == 1


def test_derived_versions_follow_the_retention_rule(embedder, catalog):
    embedder.PERSONALIZE = {**embedder.PERSONALIZE, "KEEP_ARTIFACTS": 1}
    for n in range(3):
        new = Item.objects.create(external_id=f"garden-new-{n}", title="Hose",
                                  categories=["Garden"])
        tasks.embed_items.delay([new.pk]).get()
    files = dict(ModelVersion.objects.filter(strategy="content").values_list(
        "version", "artifact"))
    assert [version for version, path in sorted(files.items()) if path] == [3, 4]
    assert get_active_model("content").version == 4
