"""The process-level model cache: one load per version, pointer checks, erasure."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from django.core.cache import cache

from personalize.models import ModelVersion, Subject
from personalize.signals import subject_erased
from personalize.strategies.base import CannotRecommend, History
from personalize.training import active, service
from personalize.training.active import ActiveModel, forget_in_artifact, get_active_model
from personalize.training.artifacts import Artifact
from tests.training.conftest import use_strategies

pytestmark = pytest.mark.django_db


def _other_process_activates(version: ModelVersion) -> None:
    """What another process's activation leaves behind: the DB row and the shared pointer."""
    ModelVersion.objects.filter(strategy=version.strategy, status="active").update(status="retired")
    ModelVersion.objects.filter(pk=version.pk).update(status="active")
    cache.set(active.pointer_key(version.strategy),
              {"version": version.version, "path": version.artifact})


def test_none_when_no_version_is_active(fake_strategies, shop):
    assert get_active_model("cooc") is None


def test_the_interface_serving_codes_against(fake_strategies, shop):
    service.train_strategy("cooc")
    live = get_active_model("cooc")
    assert isinstance(live, ActiveModel)
    assert (live.name, live.version) == ("cooc", 1)
    assert isinstance(live.artifact, Artifact)
    assert type(live.strategy).__name__ == "CoCount"
    with pytest.raises(AttributeError):
        live.version = 2  # frozen


def test_the_artifact_is_loaded_once_not_per_request(fake_strategies, shop, settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)  # check the pointer on every call
    service.train_strategy("cooc")
    active.clear_loaded()  # a process that did not train it
    with mock.patch.object(active, "load_artifact", wraps=active.load_artifact) as load:
        models = [get_active_model("cooc") for _ in range(20)]
    assert load.call_count == 1
    assert all(m is models[0] for m in models)


def test_the_training_process_serves_what_it_trained_without_reading_it_back(
        fake_strategies, shop, settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    with mock.patch.object(active, "load_artifact", wraps=active.load_artifact) as load:
        version = service.train_strategy("cooc")
        live = get_active_model("cooc")
    load.assert_not_called()
    assert (live.version, version.status) == (version.version, "active")
    stored = active.load_artifact(version.artifact)
    assert sorted(live.artifact.arrays) == sorted(stored.arrays)
    for name, array in stored.arrays.items():
        np.testing.assert_array_equal(live.artifact[name], array)


def test_an_adopted_version_that_is_not_live_gives_way_at_the_next_check(
        fake_strategies, shop, settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=3600)
    v1 = service.train_strategy("cooc")
    # as if v2's activation had been rolled back with its caller's transaction
    v2 = service.train_strategy("cooc", force=True)
    active.adopt("cooc", v2.version, v2.artifact, get_active_model("cooc").strategy,
                 active.load_artifact(v2.artifact))
    _other_process_activates(v1)
    assert get_active_model("cooc").version == v1.version


def test_adopting_applies_the_erasures_this_process_knows(fake_strategies, shop, settings):
    use_strategies(settings)
    artifact = Artifact(arrays={"subject_ids": np.array([5, 6]),
                                "subject_vectors": np.ones((2, 2), dtype=np.float32)})
    active._erased[6] = 0.0
    active.adopt("cooc", 9, "cooc/v9.npz", mock.Mock(), artifact)
    held = active.loaded_models()["cooc"].artifact
    assert held["subject_ids"].tolist() == [5, -1]
    assert held["subject_vectors"][1].tolist() == [0.0, 0.0]


def test_another_process_activation_is_picked_up_at_the_next_check(fake_strategies, shop,
                                                                    settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=3600)
    service.train_strategy("cooc")
    v2 = service.train_strategy("cooc", force=True)
    service.rollback("cooc", 1)
    assert get_active_model("cooc").version == 1

    _other_process_activates(v2)
    # within the interval this process keeps what it has, without asking anyone
    with mock.patch.object(active, "_read_shared_state") as read:
        assert get_active_model("cooc").version == 1
    read.assert_not_called()

    active.invalidate_local("cooc")  # as if the interval had passed
    assert get_active_model("cooc").version == 2


def test_a_lost_pointer_is_read_back_from_the_database(fake_strategies, shop, settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("cooc")
    active.clear_loaded()
    cache.clear()
    assert get_active_model("cooc").version == 1
    assert cache.get(active.pointer_key("cooc"))["version"] == 1


def test_an_unreachable_cache_falls_back_to_the_database(fake_strategies, shop, settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("cooc")
    active.clear_loaded()
    with mock.patch.object(active.cacheread, "get_many", side_effect=ConnectionError):
        assert get_active_model("cooc").version == 1


def test_a_version_that_fails_to_load_leaves_the_loaded_one_serving(fake_strategies, shop,
                                                                     settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("cooc")
    v2 = service.train_strategy("cooc", force=True)
    service.rollback("cooc", 1)
    assert get_active_model("cooc").version == 1
    ModelVersion.objects.filter(pk=v2.pk).update(artifact="personalize/artifacts/missing.npz")
    v2.refresh_from_db()

    _other_process_activates(v2)
    assert get_active_model("cooc").version == 1  # still serving
    assert get_active_model("cooc").version == 1  # and retried, not given up


def test_erasure_removes_a_subjects_vector_from_serving(fake_strategies, shop, settings):
    service.train_strategy("factors")
    live = get_active_model("factors")
    subject = shop["subjects"][3]
    row = live.artifact.index_of("subject_ids")[subject.pk]
    assert np.any(live.artifact["subject_factors"][row] != 0)
    assert live.strategy.recommend(live.artifact, History(subject_id=subject.pk), 5)

    subject_erased.send(sender=Subject, subject_id=subject.pk, key=subject.key, reason="erasure")

    assert subject.pk not in live.artifact.index_of("subject_ids")
    assert not np.any(live.artifact["subject_factors"][row])
    with pytest.raises(CannotRecommend):
        live.strategy.recommend(live.artifact, History(subject_id=subject.pk), 5)
    other = shop["subjects"][4]
    assert live.strategy.recommend(live.artifact, History(subject_id=other.pk), 5)


def test_a_later_reload_forgets_the_erased_subject_too(fake_strategies, shop):
    service.train_strategy("factors")
    subject = shop["subjects"][5]
    get_active_model("factors")
    subject_erased.send(sender=Subject, subject_id=subject.pk, key=subject.key, reason="erasure")

    active.clear_loaded()  # a fresh process: it knows of the erasure only through the cache
    live = get_active_model("factors")

    assert subject.pk not in live.artifact.index_of("subject_ids")
    tombstone = list(live.artifact["subject_ids"]).index(-1)
    assert not np.any(live.artifact["subject_factors"][tombstone])


def test_another_process_applies_an_erasure_at_its_next_check(fake_strategies, shop, settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("factors")
    live = get_active_model("factors")
    subject = shop["subjects"][6]
    # the erasure happened elsewhere: only the shared cache knows
    cache.set(active.ERASED_KEY, {subject.pk: 1.0})
    cache.set(active.ERASED_GEN_KEY, "elsewhere")

    assert get_active_model("factors") is live
    assert subject.pk not in live.artifact.index_of("subject_ids")


def test_forget_in_artifact_zeroes_per_subject_rows_and_csr_slices():
    artifact = Artifact(arrays={
        "subject_ids": np.array([10, 11, 12]),
        "item_ids": np.array([1, 2, 3]),  # same length, but an item array: untouched
        "pu": np.ones((3, 2)),
        "item_factors": np.ones((3, 2)),
        "ur.indptr": np.array([0, 2, 3, 5]),
        "ur.items": np.array([0, 1, 2, 0, 1]),
        "ur.ratings": np.array([5.0, 4.0, 3.0, 2.0, 1.0]),
    }, meta={})
    artifact.index_of("subject_ids")

    assert forget_in_artifact(artifact, [10, 99]) == 1

    assert artifact["subject_ids"].tolist() == [-1, 11, 12]
    assert artifact["pu"].tolist() == [[0, 0], [1, 1], [1, 1]]
    assert artifact["item_factors"].sum() == 6
    assert artifact["item_ids"].tolist() == [1, 2, 3]
    assert artifact["ur.ratings"].tolist() == [0.0, 0.0, 3.0, 2.0, 1.0]
    assert 10 not in artifact.index_of("subject_ids")
    assert forget_in_artifact(artifact, [10]) == 0


def test_forget_in_artifact_handles_string_ids_and_artifacts_without_subjects():
    artifact = Artifact(arrays={"subject_ids": np.array(["a", "b"]), "subject_bias": np.ones(2)})
    assert forget_in_artifact(artifact, ["b"]) == 1
    assert artifact["subject_ids"].tolist() == ["a", ""]
    assert artifact["subject_bias"].tolist() == [1.0, 0.0]
    assert forget_in_artifact(Artifact(arrays={"item_ids": np.arange(3)}), [1]) == 0
