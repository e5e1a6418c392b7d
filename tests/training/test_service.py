"""train_strategy end to end: snapshot, fit, gate on a temporal holdout, activate."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from django.db import OperationalError

from personalize.dataset import Dataset
from personalize.models import Event, ModelVersion
from personalize.serving.loader import get_active_model
from personalize.strategies.history import History
from personalize.training import activation, gate, service
from personalize.training.storage import artifact_storage, load_artifact
from tests.training import fakes
from tests.training.conftest import START, make_events, set_options, use_strategies

pytestmark = pytest.mark.django_db


def test_full_cycle_from_events_to_an_active_model(fake_strategies, shop):
    version = service.train_strategy("cooc")

    assert version.status == "active"
    assert version.version == 1
    assert version.note == "No live version: activated."
    assert version.metrics["ndcg@10"] > 0.2  # same-category items are what the holdout holds
    assert {"hit_rate@10", "recall@10", "precision@10", "coverage@10"} <= set(version.metrics)
    assert version.metrics["subjects"] > 5
    assert version.parameters["class"] == "tests.training.fakes.CoCount"
    assert version.parameters["options"] == {"sabotage": False, "fail": "", "block": False}
    assert version.parameters["fingerprint"]["events"] == 320
    # the newest tenth of the events is held out, not trained on
    held_out = version.parameters["holdout"]["events"]
    assert 25 <= held_out <= 40
    assert version.n_events == 320 - held_out
    assert version.n_items == 50 and version.n_subjects == 40
    assert version.data_start >= START
    assert version.data_end < datetime.fromisoformat(version.parameters["holdout"]["cut"])
    assert version.fit_seconds > 0 and version.total_seconds >= version.fit_seconds
    assert version.started_at and version.finished_at and version.activated_at
    assert artifact_storage().exists(version.artifact)
    assert version.artifact_size == artifact_storage().size(version.artifact)
    assert load_artifact(version.artifact).meta["version"] == 1

    live = get_active_model("cooc")
    assert live is not None and live.version == 1
    books = [item.pk for item in shop["catalog"]["Books"]]
    recommended = live.strategy.recommend(live.artifact, History(item_ids=books[:3]), 5)
    assert {item for item, _ in recommended} <= set(books[3:])


def test_gate_rejects_a_deliberately_worse_model(fake_strategies, shop, settings):
    good = service.train_strategy("cooc")
    set_options(settings, "cooc", sabotage=True)

    worse = service.train_strategy("cooc")

    assert worse.status == "rejected"
    assert worse.metrics["ndcg@10"] < good.metrics["ndcg@10"] - 0.1
    assert worse.metrics["live_version"] == 1
    assert worse.metrics["live_ndcg@10"] == pytest.approx(good.metrics["ndcg@10"], abs=1e-6)
    assert "v1 stays live" in worse.note and "tolerance 0.01" in worse.note
    good.refresh_from_db()
    assert good.status == "active"
    assert get_active_model("cooc").version == 1


def test_gate_accepts_a_model_within_the_tolerance(fake_strategies, shop, settings):
    service.train_strategy("cooc")
    set_options(settings, "cooc", sabotage=True)
    settings.PERSONALIZE = {**settings.PERSONALIZE, "ACTIVATION_TOLERANCE": 1.0}

    accepted = service.train_strategy("cooc")

    assert accepted.status == "active"
    assert accepted.note.endswith(": activated.")
    assert ModelVersion.objects.get(strategy="cooc", version=1).status == "retired"
    assert get_active_model("cooc").version == 2


def test_a_fit_that_raises_leaves_the_old_model_live(fake_strategies, shop, settings):
    service.train_strategy("cooc")
    set_options(settings, "cooc", fail="runtime")

    failed = service.train_strategy("cooc")

    assert failed.status == "failed"
    assert "RuntimeError: the fit exploded on purpose" in failed.error
    assert "Traceback" in failed.error
    assert failed.note.startswith("Training failed: RuntimeError")
    assert "v1 stays live" in failed.note
    assert failed.finished_at is not None and not failed.artifact
    assert ModelVersion.objects.get(strategy="cooc", version=1).status == "active"
    assert get_active_model("cooc").version == 1


def test_a_transient_error_is_recorded_and_raised_for_a_retry(fake_strategies, shop, settings):
    set_options(settings, "cooc", fail="operational")

    with pytest.raises(OperationalError):
        service.train_strategy("cooc")

    row = ModelVersion.objects.get(strategy="cooc")
    assert row.status == "failed" and "OperationalError" in row.error
    assert get_active_model("cooc") is None


def test_training_again_without_new_events_is_a_no_op(fake_strategies, shop, catalog):
    first = service.train_strategy("cooc")
    again = service.train_strategy("cooc")
    assert again.pk == first.pk
    assert ModelVersion.objects.count() == 1

    forced = service.train_strategy("cooc", force=True)
    assert forced.version == 2

    make_events(catalog, n_subjects=2, start=datetime(2024, 3, 5, tzinfo=UTC))
    assert service.train_strategy("cooc").version == 3


def test_changed_options_retrain_even_without_new_events(fake_strategies, shop, settings):
    service.train_strategy("cooc")
    set_options(settings, "cooc", block=False, sabotage=False, fail="")  # same values: no-op
    assert service.train_strategy("cooc").version == 1
    set_options(settings, "cooc", sabotage=True)
    assert service.train_strategy("cooc").version == 2


def test_rollback_brings_an_earlier_version_back(fake_strategies, shop):
    service.train_strategy("cooc")
    service.train_strategy("cooc", force=True)
    assert get_active_model("cooc").version == 2

    restored = activation.rollback("cooc", 1, note="Rolled back by admin.")

    assert restored.status == "active" and restored.note == "Rolled back by admin."
    assert ModelVersion.objects.get(strategy="cooc", version=2).status == "retired"
    assert ModelVersion.objects.filter(strategy="cooc", status="active").count() == 1
    assert get_active_model("cooc").version == 1


def test_a_failed_version_cannot_be_activated(fake_strategies, shop, settings):
    set_options(settings, "cooc", fail="runtime")
    failed = service.train_strategy("cooc")
    with pytest.raises(ValueError, match="no servable artifact"):
        activation.activate_version(failed)


def test_without_timestamps_spread_there_is_nothing_to_hold_out(fake_strategies, catalog):
    make_events(catalog, n_subjects=10)
    Event.objects.update(timestamp=START)  # one moment: no time cut is possible

    first = service.train_strategy("cooc")
    assert first.status == "active" and first.metrics == {}
    assert first.parameters["holdout"]["events"] == 0

    second = service.train_strategy("cooc", force=True)
    assert second.status == "active"
    assert second.note == ("Nothing held out to compare on; activated over v1 because it has "
                           "newer data.")


def test_rows_left_training_by_a_dead_worker_are_marked_failed(fake_strategies, shop):
    ModelVersion.objects.create(strategy="cooc", version=1, status="training")
    version = service.train_strategy("cooc")
    assert version.version == 2
    orphan = ModelVersion.objects.get(strategy="cooc", version=1)
    assert orphan.status == "failed"
    assert orphan.note == "The worker stopped before this training finished."


def test_old_artifacts_are_pruned_but_the_rows_stay(fake_strategies, shop, settings):
    use_strategies(settings, KEEP_ARTIFACTS=1)
    versions = [service.train_strategy("cooc", force=True) for _ in range(3)]
    paths = [v.artifact for v in versions]
    rows = {v.version: v for v in ModelVersion.objects.filter(strategy="cooc")}
    assert rows[3].status == "active" and rows[3].artifact
    assert rows[2].artifact  # the newest non-live one is kept for rollback
    assert rows[1].artifact == "" and rows[1].artifact_size > 0
    assert not artifact_storage().exists(paths[0])
    with pytest.raises(ValueError):
        activation.rollback("cooc", 1)


def test_an_unknown_strategy_is_a_key_error(fake_strategies, shop):
    with pytest.raises(KeyError, match="nope"):
        service.train_strategy("nope")


# --- the holdout and its evaluation ----------------------------------------------


def reference_histories(train, subjects):
    """What the holdout's histories must be: each subject's kept events, oldest first."""
    events = train.events
    histories = []
    for row in subjects.tolist():
        chosen = [n for n in np.argsort(events.timestamp, kind="stable").tolist()
                  if events.subject_idx[n] == row
                  and (events.weight[n] != 0 or np.isfinite(events.rating[n]))]
        rated = [n for n in chosen if np.isfinite(events.rating[n])]
        histories.append(History(
            item_ids=[train.item_ids[events.item_idx[n]].item() for n in chosen],
            weights=[1.0 if np.isfinite(events.rating[n]) and events.weight[n] == 0
                     else float(events.weight[n]) for n in chosen],
            timestamps=[float(events.timestamp[n]) for n in chosen],
            ratings={train.item_ids[events.item_idx[n]].item(): float(events.rating[n])
                     for n in rated},
            subject_id=train.subject_ids[row].item(),
        ))
    return histories


def test_holdout_histories_are_the_training_events_oldest_first():
    rng = np.random.default_rng(5)
    n = 3000
    types = rng.choice(["view", "purchase", "rating", "dislike", "impression"], size=n)
    dataset = Dataset.from_arrays(
        rng.integers(0, 60, n), rng.integers(0, 80, n), types,
        values=np.where(types == "rating", rng.integers(1, 6, n), np.nan),
        timestamps=rng.integers(1, 500, n).astype(float),  # shuffled, with ties
        event_weights={"view": 1.0, "purchase": 8.0, "rating": None, "dislike": -2.0,
                       "impression": 0.0},
    )
    holdout = gate.temporal_holdout(dataset, 0.2, max_subjects=25)
    assert holdout.subjects.size == 25
    assert holdout.histories == reference_histories(holdout.train, holdout.subjects)
    assert any(h.ratings for h in holdout.histories)


def test_evaluation_is_the_same_as_recommending_one_subject_at_a_time(data_dir, monkeypatch):
    from personalize.strategies.base import Strategy
    from personalize.strategies.ease import EASE

    dataset = Dataset.from_file("ml100k", data_dir / "movielens-100k")
    holdout = gate.temporal_holdout(dataset, 0.1, max_subjects=200)
    artifact = EASE().fit(holdout.train)
    batch = gate.evaluate_on_holdout(EASE(), artifact, holdout)
    # the base class's loop over recommend(), instead of EASE's batch
    monkeypatch.setattr(EASE, "recommend_many", Strategy.recommend_many)
    looped = gate.evaluate_on_holdout(EASE(), artifact, holdout)
    assert batch == looped
    assert batch["ndcg@10"] > 0.1 and batch["subjects"] == holdout.subjects.size


def test_fingerprint_counts_every_event_and_names_the_newest(shop):
    newest = Event.objects.create(subject=shop["subjects"][0], item=None, event_type="search")
    assert service.data_fingerprint() == {"events": 321, "last_event_id": newest.pk}


# --- reusing the live artifact, and the retention rule ---------------------------


@pytest.fixture
def reusing(settings, shop):
    use_strategies(settings, {"reuse": "tests.training.fakes.Reusing",
                              "cooc": "tests.training.fakes.CoCount"})
    fakes.Reusing.refits.clear()
    yield settings
    fakes.Reusing.refits.clear()


def test_a_strategy_that_refits_is_given_the_live_artifact(reusing):
    assert service.train_strategy("reuse").status == "active"
    assert fakes.Reusing.refits == []  # nothing live yet: fit
    service.train_strategy("reuse", force=True)
    assert fakes.Reusing.refits == [1]
    service.train_strategy("reuse", force=True)
    assert fakes.Reusing.refits == [1, 2]
    assert not fakes.CoCount.implements("refit")  # others keep plain fit: nothing is read


def test_a_live_artifact_it_cannot_read_means_a_fit_from_scratch(reusing):
    first = service.train_strategy("reuse")
    other = service.train_strategy("cooc")
    strategy, dataset = fakes.Reusing(), service.take_snapshot()
    # written by another class (the name now points elsewhere): not offered to refit
    ModelVersion.objects.filter(pk=first.pk).update(artifact=other.artifact)
    assert service.fit_strategy("reuse", strategy, dataset).meta["strategy"] == (
        "tests.training.fakes.Reusing")
    artifact_storage().delete(other.artifact)  # gone from storage: the same
    service.fit_strategy("reuse", strategy, dataset)
    assert fakes.Reusing.refits == []


def test_the_live_version_and_the_two_newest_others_keep_their_files_by_default(reusing):
    versions = [service.train_strategy("cooc", force=True) for _ in range(5)]
    kept = {v.version: bool(v.artifact) for v in ModelVersion.objects.filter(strategy="cooc")}
    assert kept == {1: False, 2: False, 3: True, 4: True, 5: True}
    assert [artifact_storage().exists(v.artifact) for v in versions] == [
        False, False, True, True, True]


def test_keep_artifacts_zero_keeps_only_the_live_file(reusing, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "KEEP_ARTIFACTS": 0}
    for _ in range(3):
        service.train_strategy("cooc", force=True)
    with_files = ModelVersion.objects.filter(strategy="cooc").exclude(artifact="")
    assert list(with_files.values_list("version", "status")) == [(3, "active")]
