"""The live model of each strategy, loaded once per process and swapped when it changes.

Serving asks :func:`get_active_model` on every request. The answer comes from
this process's memory; at most once every ``ACTIVE_MODEL_CHECK_INTERVAL``
seconds per strategy it reads the *version pointer* from the shared cache (one
``get_many`` round trip, about 0.1 ms on a local Redis; see
``benchmarks/train_overhead.py``) and reloads the artifact from storage only
when the pointer names another version. The database (``status="active"``,
one per strategy by a partial unique constraint) is the source of truth: when
the pointer is missing (cache flushed, or down) it is read from there and put
back, so losing Redis never loses the live model, it only costs a query.

Erasure: on ``subject_erased`` every loaded artifact forgets the subject (its
rows in per-subject arrays are zeroed and it leaves the subject index), and the
subject id is remembered in the shared cache with an erasure generation
counter, so other processes apply it on their next pointer check and a later
reload of an artifact trained before the erasure forgets it too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.cache import caches

from personalize import cacheread
from personalize.conf import personalize_settings
from personalize.strategies.base import Strategy
from personalize.training.artifacts import Artifact, load_artifact

logger = logging.getLogger(__name__)

POINTER_PREFIX = "personalize:active:"
ERASED_KEY = "personalize:erased"
ERASED_GEN_KEY = "personalize:erased:gen"
#: The pointer expires now and then so that a pointer write lost while the
#: cache was unreachable heals from the database within this many seconds.
POINTER_TTL = 300
#: Erased subject ids are kept this long (far longer than any training cycle).
ERASED_TTL = 60 * 60 * 24 * 90
#: Arrays with one row per subject that strategies commonly use, besides
#: ``subject_*`` / ``user_*`` names and whatever ``meta["subject_arrays"]`` lists.
_SUBJECT_ARRAY_NAMES = frozenset({"pu", "bu", "user_mean"})


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


def _cache() -> Any:
    return caches[personalize_settings.CACHE_ALIAS]


def pointer_key(name: str) -> str:
    return f"{POINTER_PREFIX}{name}"


def _slot(name: str) -> _Slot:
    slot = _slots.get(name)
    if slot is None:
        with _slots_lock:
            slot = _slots.setdefault(name, _Slot(lock=threading.Lock()))
    return slot


def _pointer_from_db(name: str) -> dict[str, Any]:
    from personalize.models import ModelVersion
    from personalize.models.training import ModelStatus

    row = (
        ModelVersion.objects.filter(strategy=name, status=ModelStatus.ACTIVE)
        .values("version", "artifact")
        .first()
    )
    if row is None:
        return {"version": None, "path": ""}
    return {"version": row["version"], "path": row["artifact"]}


def _read_shared_state(name: str) -> tuple[dict[str, Any], Any]:
    """The strategy's version pointer and the erasure generation, in one round trip."""
    key = pointer_key(name)
    try:
        # the lean MGET of the hot paths: a request that falls on a check pays for it
        values = cacheread.get_many(_cache(), [key, ERASED_GEN_KEY])
    except Exception:  # the cache is an accelerator: fall back to the database
        logger.warning("Cannot read the model pointer from the cache", exc_info=True)
        return _pointer_from_db(name), _erased_gen
    pointer = values.get(key)
    if pointer is None:
        pointer = _pointer_from_db(name)
        try:
            # add, not set: an activation that wrote a newer pointer meanwhile wins.
            _cache().add(key, pointer, timeout=POINTER_TTL)
        except Exception:
            logger.warning("Cannot write the model pointer to the cache", exc_info=True)
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
        slot.checked_at = time.monotonic()
        _sync_erased(erased_gen)
        version, path = pointer.get("version"), pointer.get("path") or ""
        if version is None:
            slot.model, slot.pointer = None, None
            return None
        if slot.pointer != (version, path):
            _load_into(slot, name, int(version), path)
        return slot.model


def _load_into(slot: _Slot, name: str, version: int, path: str) -> None:
    from personalize.strategies.registry import get_strategy

    try:
        strategy = get_strategy(name)
        artifact = load_artifact(path)
    except Exception:
        logger.exception("Cannot load %s v%s from %r; keeping the loaded version", name, version,
                         path)
        return
    forget_in_artifact(artifact, _erased.keys())
    slot.model = ActiveModel(name=name, version=version, strategy=strategy, artifact=artifact)
    slot.pointer = (version, path)
    logger.info("Loaded %s v%s (%d bytes of arrays)", name, version, artifact.nbytes)


def adopt(name: str, version: int, path: str, strategy: Strategy, artifact: Artifact) -> None:
    """Hold ``artifact``, just saved to ``path`` as ``version``, as this process's live model.

    The process that trained and activated a version already has its artifact
    in memory: reading it back from storage (the next training's gate would)
    only costs time. The pointer is still checked on the next
    :func:`get_active_model` call, so if ``version`` did not go live after
    all (its transaction rolled back) the live one is loaded then.
    """
    forget_in_artifact(artifact, _erased.keys())
    slot = _slot(name)
    with slot.lock:
        slot.model = ActiveModel(name=name, version=version, strategy=strategy, artifact=artifact)
        slot.pointer = (version, path)
        slot.checked_at = float("-inf")


def publish_pointer(name: str, version: int, path: str) -> None:
    """Tell every process that ``version`` of ``name`` is live (after the DB commit).

    This process re-checks on its next :func:`get_active_model` call; others
    within ``ACTIVE_MODEL_CHECK_INTERVAL`` seconds.
    """
    try:
        _cache().set(pointer_key(name), {"version": version, "path": path}, timeout=POINTER_TTL)
    except Exception:  # the pointer heals from the database when it expires
        logger.warning("Cannot publish the model pointer of %s v%s", name, version, exc_info=True)
    invalidate_local(name)


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


def forget_in_artifact(artifact: Artifact, subject_ids: Iterable[Any]) -> int:
    """Remove subjects from a loaded artifact; returns how many of its rows were forgotten.

    The subject leaves the subject index (``subject_ids``: its entry becomes a
    tombstone, ``-1`` or ``""``), and its rows are zeroed in every per-subject
    array: names starting with ``subject_`` or ``user_``, ``pu``/``bu``/
    ``user_mean``, those listed in ``meta["subject_arrays"]``, and the data of
    CSR-like ``<prefix>.indptr`` structures with one row per subject. Derived
    structures in ``artifact.cache`` are dropped so they are rebuilt without it.
    """
    if "subject_ids" not in artifact.arrays:
        return 0
    wanted = list(subject_ids)
    if not wanted:
        return 0
    ids = artifact.arrays["subject_ids"]
    if ids.dtype.kind in "iu":
        numeric = [int(s) for s in wanted if str(s).lstrip("-").isdigit()]
        mask = np.isin(ids, np.asarray(numeric, dtype=ids.dtype)) if numeric else None
    else:
        mask = np.isin(ids.astype(str), np.asarray([str(s) for s in wanted]))
    if mask is None or not mask.any():
        return 0
    n = len(ids)
    rows = np.flatnonzero(mask)
    declared = set(artifact.meta.get("subject_arrays", ()))
    for name, array in list(artifact.arrays.items()):
        if name == "subject_ids" or array.ndim == 0 or array.shape[0] != n:
            continue
        if name in declared or name in _SUBJECT_ARRAY_NAMES or name.startswith(
            ("subject_", "user_")
        ):
            array = array.copy()
            array[rows] = 0
            artifact.arrays[name] = array
    for name in [k for k in artifact.arrays if k.endswith(".indptr")]:
        indptr = artifact.arrays[name]
        if len(indptr) != n + 1:
            continue
        prefix, total = name[: -len("indptr")], int(indptr[-1])
        # zero each forgotten row's slice in the sibling arrays (vectorised)
        spans = [np.arange(indptr[r], indptr[r + 1]) for r in rows]
        positions = np.concatenate(spans) if spans else np.empty(0, dtype=np.int64)
        for sibling in [k for k in artifact.arrays if k.startswith(prefix) and k != name]:
            array = artifact.arrays[sibling]
            if array.ndim >= 1 and array.shape[0] == total and positions.size:
                array = array.copy()
                array[positions] = 0
                artifact.arrays[sibling] = array
    tombstoned = ids.copy()
    tombstoned[mask] = -1 if ids.dtype.kind in "iu" else ""
    artifact.arrays["subject_ids"] = tombstoned
    artifact.cache.clear()
    return len(rows)


def _sync_erased(generation: Any) -> None:
    """Apply erasures recorded by other processes when the shared generation moved."""
    global _erased_gen
    if generation is None or generation == _erased_gen:
        return
    try:
        shared = _cache().get(ERASED_KEY) or {}
    except Exception:
        logger.warning("Cannot read erased subjects from the cache", exc_info=True)
        return
    fresh = {sid: at for sid, at in shared.items() if sid not in _erased}
    _erased.update(shared)
    _erased_gen = generation
    if fresh:
        for slot in list(_slots.values()):
            if slot.model is not None:
                forget_in_artifact(slot.model.artifact, fresh)


def forget_subject(subject_id: Any) -> None:
    """Forget ``subject_id`` in every loaded artifact and tell the other processes.

    Connected to ``personalize.signals.subject_erased``.
    """
    from personalize.training.locks import CacheLock

    now = time.time()
    _erased[subject_id] = now
    for slot in list(_slots.values()):
        if slot.model is not None:
            forget_in_artifact(slot.model.artifact, [subject_id])
    try:
        lock = CacheLock("erased", timeout=10)
        for _ in range(50):  # a short wait: erasures are rare and brief
            if lock.acquire():
                break
            time.sleep(0.02)
        try:
            cache = _cache()
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
        cache = _cache()
        shared = cache.get(ERASED_KEY)
        if shared:
            kept = {sid: at for sid, at in shared.items() if at >= older_than}
            if len(kept) != len(shared):
                cache.set(ERASED_KEY, kept, timeout=ERASED_TTL)
    except Exception:
        logger.warning("Cannot prune erased subjects in the cache", exc_info=True)


def on_subject_erased(sender: Any = None, subject_id: Any = None, **kwargs: Any) -> None:
    """Receiver of ``subject_erased``."""
    if subject_id is not None:
        forget_subject(subject_id)
