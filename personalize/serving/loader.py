"""The live model of each strategy, loaded once per process and swapped when it changes.

Serving asks :func:`get_active_model` on every request. The answer comes from
this process's memory; at most once every ``ACTIVE_MODEL_CHECK_INTERVAL``
seconds per strategy it reads the *version pointer* from the shared cache
(:mod:`personalize.training.activation`, one ``get_many`` round trip) and
reloads the artifact from storage only when the pointer names another version.
The database is the source of truth: when the pointer is missing (cache
flushed, or down) it is read from there and put back, so losing Redis never
loses the live model, it only costs a query. With a cache that lives in each
process (Django's local-memory cache: the quick start's set-up) no other
process can publish a pointer to this one, so the check reads the live version
from the database (one indexed query per interval and strategy), and a version
that changed there moves this process's global generation, so no cached block
computed with the old model is served again.

Erasure: on ``subject_erased`` every loaded artifact forgets the subject
(``Strategy.forget_subjects``), and the subject id is remembered in the shared
cache with an erasure generation, so other processes apply it on their next
pointer check and a later reload of an artifact trained before the erasure
forgets it too.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from personalize.backends.cache import is_process_local, personalize_cache, warn_unreachable
from personalize.conf import personalize_settings
from personalize.models import ModelVersion
from personalize.models.training import ModelStatus
from personalize.serving.cache import bump_global
from personalize.strategies import Artifact, Strategy
from personalize.strategies.registry import get_strategy
from personalize.training.activation import POINTER_TTL, pointer_from_db, pointer_key
from personalize.training.locks import CacheLock
from personalize.training.storage import load_artifact

logger = logging.getLogger(__name__)

ERASED_KEY = "personalize:erased"
ERASED_GEN_KEY = "personalize:erased:gen"
#: Erased subject ids are kept this long (far longer than any training cycle).
ERASED_TTL = 60 * 60 * 24 * 90


@dataclass(frozen=True)
class ActiveModel:
    """The live version of one strategy, as loaded in this process."""

    name: str
    version: int
    strategy: Strategy
    artifact: Artifact


@dataclass
class _Slot:
    model: ActiveModel | None = None
    pointer: tuple[int, str] | None = None
    checked_at: float = float("-inf")
    lock: Any = None


_slots: dict[str, _Slot] = {}
_slots_lock = threading.Lock()
#: subject id -> erased-at (POSIX seconds), as known to this process.
_erased: dict[Any, float] = {}
_erased_gen: Any = None


def _slot(name: str) -> _Slot:
    slot = _slots.get(name)
    if slot is None:
        with _slots_lock:
            slot = _slots.setdefault(name, _Slot(lock=threading.Lock()))
    return slot


def _read_shared_state(name: str) -> tuple[dict[str, Any], Any]:
    """The strategy's version pointer and the erasure generation, in one round trip."""
    if is_process_local():
        # A worker or `manage.py personalize_train` in another process activated
        # versions in the database, not in this process's cache.
        try:
            erased_gen = personalize_cache().get(ERASED_GEN_KEY)
        except Exception:
            erased_gen = _erased_gen
        return pointer_from_db(name), erased_gen
    key = pointer_key(name)
    try:
        # one round trip for both: a request that falls on a check pays for it
        values = personalize_cache().get_many([key, ERASED_GEN_KEY])
    except Exception as exc:  # the cache is an accelerator: fall back to the database
        warn_unreachable("reading the live model version from the database", exc)
        return pointer_from_db(name), _erased_gen
    pointer = values.get(key)
    if pointer is None:
        pointer = pointer_from_db(name)
        try:
            # add, not set: an activation that wrote a newer pointer meanwhile wins.
            personalize_cache().add(key, pointer, timeout=POINTER_TTL)
        except Exception as exc:
            warn_unreachable("the live model version not cached", exc)
    return pointer, values.get(ERASED_GEN_KEY)


def get_active_model(name: str) -> ActiveModel | None:
    """The live model of strategy ``name`` in this process, or ``None`` when none is active.

    Cheap: a dictionary lookup, plus one shared-cache read at most every
    ``ACTIVE_MODEL_CHECK_INTERVAL`` seconds; the artifact is read from storage
    only when another version became active. If loading the new version fails
    the previously loaded one keeps serving and the load is retried at the
    next check.

    Args:
        name: the configured strategy name.
    """
    slot = _slot(name)
    interval = float(personalize_settings.ACTIVE_MODEL_CHECK_INTERVAL)
    if time.monotonic() - slot.checked_at < interval:
        return slot.model
    with slot.lock:
        if time.monotonic() - slot.checked_at < interval:  # another thread just checked
            return slot.model
        pointer, erased_gen = _read_shared_state(name)
        checked_before = slot.checked_at > float("-inf")
        slot.checked_at = time.monotonic()
        _sync_erased(erased_gen)
        before = slot.pointer
        version, path = pointer.get("version"), pointer.get("path") or ""
        if version is None:
            slot.model, slot.pointer = None, None
        elif slot.pointer != (version, path):
            _load_into(slot, name, int(version), path)
        if checked_before and slot.pointer != before and is_process_local():
            # No model_activated reached this process: blocks cached here under
            # the old version (and its fills) must not be served again.
            bump_global()
        return slot.model


def _load_into(slot: _Slot, name: str, version: int, path: str) -> None:
    try:
        strategy = get_strategy(name)
        artifact = load_artifact(path)
    except Exception:
        logger.exception("Cannot load %s v%s from %r; keeping the loaded version", name, version,
                         path)
        return
    strategy.forget_subjects(artifact, list(_erased))
    slot.model = ActiveModel(name=name, version=version, strategy=strategy, artifact=artifact)
    slot.pointer = (version, path)
    logger.info("Loaded %s v%s (%d bytes of arrays)", name, version, artifact.nbytes)


def invalidate_local(name: str | None = None) -> None:
    """Make this process re-read the pointer of ``name`` (all strategies if ``None``) next time."""
    for key, slot in list(_slots.items()):
        if name is None or key == name:
            slot.checked_at = float("-inf")


def clear_loaded() -> None:
    """Drop every loaded model and remembered erasure of this process (tests use it)."""
    global _erased_gen
    _slots.clear()
    _erased.clear()
    _erased_gen = None


def loaded_models() -> dict[str, ActiveModel]:
    """The models this process holds in memory now, by strategy name."""
    return {name: slot.model for name, slot in _slots.items() if slot.model is not None}


# --- erasure ---------------------------------------------------------------


def _sync_erased(generation: Any) -> None:
    """Apply erasures recorded by other processes when the shared generation moved."""
    global _erased_gen
    if generation is None or generation == _erased_gen:
        return
    try:
        shared = personalize_cache().get(ERASED_KEY) or {}
    except Exception as exc:
        warn_unreachable("erasures from other processes applied at the next check", exc)
        return
    fresh = {sid: at for sid, at in shared.items() if sid not in _erased}
    _erased.update(shared)
    _erased_gen = generation
    if fresh:
        for slot in list(_slots.values()):
            if slot.model is not None:
                slot.model.strategy.forget_subjects(slot.model.artifact, list(fresh))


def forget_subject(subject_id: Any) -> None:
    """Forget ``subject_id`` in every loaded artifact and tell the other processes.

    Connected to ``personalize.signals.subject_erased``.
    """
    now = time.time()
    _erased[subject_id] = now
    for slot in list(_slots.values()):
        if slot.model is not None:
            slot.model.strategy.forget_subjects(slot.model.artifact, [subject_id])
    try:
        lock = CacheLock("erased", timeout=10)
        for _ in range(50):  # a short wait: erasures are rare and brief
            if lock.acquire():
                break
            time.sleep(0.02)
        try:
            cache = personalize_cache()
            shared = cache.get(ERASED_KEY) or {}
            shared[subject_id] = now
            cache.set(ERASED_KEY, shared, timeout=ERASED_TTL)
            generation = f"{now}:{len(shared)}"
            cache.set(ERASED_GEN_KEY, generation, timeout=ERASED_TTL)
        finally:
            lock.release()
    except Exception:
        logger.warning("Cannot share the erasure of subject %s", subject_id, exc_info=True)


def prune_erased(older_than: float) -> None:
    """Drop remembered erasures older than ``older_than`` (every live artifact is newer)."""
    for sid in [sid for sid, at in _erased.items() if at < older_than]:
        del _erased[sid]
    try:
        cache = personalize_cache()
        shared = cache.get(ERASED_KEY)
        if shared:
            kept = {sid: at for sid, at in shared.items() if at >= older_than}
            if len(kept) != len(shared):
                cache.set(ERASED_KEY, kept, timeout=ERASED_TTL)
    except Exception:
        logger.warning("Cannot prune erased subjects in the cache", exc_info=True)


def on_model_activated(sender: Any = None, strategy: str | None = None, **kwargs: Any) -> None:
    """Receiver of ``model_activated``: re-read the pointer, forget erasures no live model needs.

    An erasure is remembered to be applied to artifacts trained before it; once
    every live version started training after it, it can go.
    """
    invalidate_local(strategy)
    oldest = (ModelVersion.objects.filter(status=ModelStatus.ACTIVE)
              .order_by("started_at").values_list("started_at", flat=True).first())
    if oldest is not None:
        prune_erased(oldest.timestamp())
