"""The process-level model cache: one load per version, pointer checks, erasure."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from django.core.cache import cache

from personalize.backends.cache import personalize_cache
from personalize.models import ModelVersion, Subject
from personalize.serving import cache as block_cache
from personalize.serving import loader
from personalize.serving.loader import ActiveModel, get_active_model
from personalize.signals import subject_erased
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend
from personalize.strategies.history import History
from personalize.training import activation, service
from tests.training.conftest import use_strategies

pytestmark = pytest.mark.django_db


def _other_process_activates(version: ModelVersion) -> None:
    """What another process's activation leaves behind: the DB row and the shared pointer."""
    ModelVersion.objects.filter(strategy=version.strategy, status="active").update(status="retired")
    ModelVersion.objects.filter(pk=version.pk).update(status="active")
    cache.set(activation.pointer_key(version.strategy),
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
    loader.clear_loaded()  # a process that did not train it
    with mock.patch.object(loader, "load_artifact", wraps=loader.load_artifact) as load:
        models = [get_active_model("cooc") for _ in range(20)]
    assert load.call_count == 1
    assert all(m is models[0] for m in models)


def test_another_process_activation_is_picked_up_at_the_next_check(fake_strategies, shop,
                                                                    settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=3600)
    service.train_strategy("cooc")
    v2 = service.train_strategy("cooc", force=True)
    activation.rollback("cooc", 1)
    assert get_active_model("cooc").version == 1

    _other_process_activates(v2)
    # within the interval this process keeps what it has, without asking anyone
    with mock.patch.object(loader, "_read_shared_state") as read:
        assert get_active_model("cooc").version == 1
    read.assert_not_called()

    loader.invalidate_local("cooc")  # as if the interval had passed
    assert get_active_model("cooc").version == 2


@pytest.fixture
def shared_cache():
    """The test's local-memory cache standing in for a shared one (Redis, as in production)."""
    with mock.patch.object(loader, "is_process_local", return_value=False):
        yield


def test_a_lost_pointer_is_read_back_from_the_database(fake_strategies, shop, settings,
                                                       shared_cache):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("cooc")
    loader.clear_loaded()
    cache.clear()
    assert get_active_model("cooc").version == 1
    assert cache.get(activation.pointer_key("cooc"))["version"] == 1


def test_an_unreachable_cache_falls_back_to_the_database(fake_strategies, shop, settings,
                                                         shared_cache):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("cooc")
    loader.clear_loaded()
    with mock.patch.object(personalize_cache(), "get_many", side_effect=ConnectionError):
        assert get_active_model("cooc").version == 1


def test_a_version_that_fails_to_load_leaves_the_loaded_one_serving(fake_strategies, shop,
                                                                     settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("cooc")
    v2 = service.train_strategy("cooc", force=True)
    activation.rollback("cooc", 1)
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

    loader.clear_loaded()  # a fresh process: it knows of the erasure only through the cache
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
    cache.set(loader.ERASED_KEY, {subject.pk: 1.0})
    cache.set(loader.ERASED_GEN_KEY, "elsewhere")

    assert get_active_model("factors") is live
    assert subject.pk not in live.artifact.index_of("subject_ids")


# --- a cache local to each process (the quick start: local memory, eager Celery) ---


@pytest.fixture
def local_memory_cache(settings):
    """Django's local-memory cache, in both test passes (the services pass uses Redis)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def _activated_in_another_process(version: ModelVersion) -> None:
    """What `manage.py personalize_train` in another process leaves behind with a local cache.

    Only the database changes: that process's pointer and signals never reach this one.
    """
    ModelVersion.objects.filter(strategy=version.strategy, status="active").update(status="retired")
    ModelVersion.objects.filter(pk=version.pk).update(status="active")


def test_with_a_process_local_cache_a_model_trained_elsewhere_serves_at_once(
        local_memory_cache, fake_strategies, shop, settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    trained_elsewhere = service.train_strategy("cooc")
    ModelVersion.objects.filter(pk=trained_elsewhere.pk).update(status="ready")  # not live yet
    loader.clear_loaded()
    cache.clear()  # this process: nothing loaded, nothing cached
    assert get_active_model("cooc") is None  # it checked: nothing is live

    _activated_in_another_process(trained_elsewhere)

    assert get_active_model("cooc").version == 1


def test_with_a_process_local_cache_a_newer_version_replaces_the_loaded_one(
        local_memory_cache, fake_strategies, shop, settings):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("cooc")
    v2 = service.train_strategy("cooc", force=True)
    activation.rollback("cooc", 1)
    assert get_active_model("cooc").version == 1
    generation = block_cache.global_generation(block_cache.read([block_cache.GLOBAL_GEN_KEY]))

    _activated_in_another_process(v2)  # this process's cache still points at v1

    assert get_active_model("cooc").version == 2
    # blocks this process cached under v1 (and their popular fills) are not served again
    assert block_cache.read([block_cache.GLOBAL_GEN_KEY])[block_cache.GLOBAL_GEN_KEY] != generation


def test_a_shared_cache_keeps_the_pointer_check_off_the_database(fake_strategies, shop, settings,
                                                                shared_cache,
                                                                django_assert_num_queries):
    use_strategies(settings, ACTIVE_MODEL_CHECK_INTERVAL=0)
    service.train_strategy("cooc")
    assert get_active_model("cooc").version == 1
    with django_assert_num_queries(0):
        assert get_active_model("cooc").version == 1
