"""New and changed items get vectors before the next full training.

Content strategies (the embeddings plugin) can add items to a live artifact
without retraining: they implement ``Strategy.upsert_items(artifact, items)``,
which adds or replaces the rows of ``items`` in the artifact's item-indexed
arrays and returns the artifact (or ``None`` when it changed it in place).

Work is split in two so that a large catalog embeds on many workers:

1. :func:`embed_part` (one Celery task per chunk of items): starts from a
   copy of the live artifact cut to the chunk's rows (item-indexed arrays keep
   only the rows of the chunk's items, everything else kept), lets the plugin
   embed the chunk into it (the embeddings plugin re-encodes only the items
   whose text changed) and saves that small partial artifact to storage;
2. :func:`merge_parts` (the chord's callback): upserts every partial's rows
   into one copy of the live artifact, keyed by ``item_ids``, saves it as a
   new ModelVersion (same metrics, ``parameters["derived_from"]``) and
   activates it, so every web process loads it at its next pointer check.
   When no row changed (items saved with the same text) no version is made.

"Item-indexed" means: an array whose first dimension equals ``len(item_ids)``.
Any other array the plugin removed from the partial (a derived ANN index) is
removed from the merged artifact too, for the strategy to rebuild.

Saving on every product save would make one version per item, so item changes
are debounced: :func:`queue_pending` collects ids in the cache, and the
``items_changed`` receiver queues a single task ``EMBED_DEBOUNCE_SECONDS``
later for all of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.utils import timezone

from personalize.backends.cache import personalize_cache
from personalize.conf import personalize_settings
from personalize.models import Item, ModelVersion
from personalize.models.training import ModelStatus
from personalize.strategies import Artifact
from personalize.strategies.registry import configured_strategy_specs, get_strategy
from personalize.training.activation import (
    activate_version,
    load_live,
    next_version,
    prune_artifacts,
)
from personalize.training.locks import CacheLock, training_lock
from personalize.training.storage import delete_artifact, load_artifact, save_artifact

logger = logging.getLogger(__name__)

PENDING_KEY = "personalize:embed:pending"
SCHEDULED_KEY = "personalize:embed:scheduled"


def _cache() -> Any:
    return personalize_cache()


def embedding_strategy_names() -> list[str]:
    """Configured strategies that can add items to a live artifact (``Strategy.upsert_items``)."""
    return [name for name in configured_strategy_specs()
            if get_strategy(name).implements("upsert_items")]


def empty_like(artifact: Artifact) -> Artifact:
    """A copy of ``artifact`` whose item-indexed arrays have zero rows."""
    return rows_like(artifact, [])


def rows_like(artifact: Artifact, item_ids: Iterable[Any]) -> Artifact:
    """A copy of ``artifact`` whose item-indexed arrays keep only the rows of ``item_ids``.

    The plugin then sees the items' current rows (their vectors and text
    fingerprints) and re-encodes only those whose text changed.
    """
    ids = artifact.arrays["item_ids"]
    wanted = list(item_ids)
    keep = np.isin(ids, np.asarray(wanted, dtype=ids.dtype)) if wanted else np.zeros(
        len(ids), dtype=bool)
    arrays = {
        name: (array[keep] if array.ndim >= 1 and array.shape[0] == len(ids) else array.copy())
        for name, array in artifact.arrays.items()
    }
    return Artifact(arrays=arrays, meta=dict(artifact.meta))


def upsert_rows(base: Artifact, part: Artifact) -> int:
    """Add or replace ``part``'s items in ``base``'s item-indexed arrays; returns rows changed.

    Rows are matched by ``item_ids``; new items are appended (zeros in item
    arrays the part lacks). Vectorised: one ``searchsorted`` per part. Rows
    changed are the new ones and those whose values differ: an item saved with
    the same text comes back with the same vector and counts for nothing.
    """
    base_ids, part_ids = base.arrays["item_ids"], part.arrays["item_ids"]
    if len(part_ids) == 0:
        return 0
    n_base = len(base_ids)
    item_arrays = [name for name, a in base.arrays.items()
                   if name != "item_ids" and a.ndim >= 1 and a.shape[0] == n_base]
    # A derived structure the plugin dropped from the part (an ANN index) is stale
    # in the base too once rows change: drop it, the strategy rebuilds it lazily.
    for name in [n for n in base.arrays if n not in part.arrays and n not in item_arrays
                 and n != "item_ids"]:
        del base.arrays[name]
    order = np.argsort(base_ids, kind="stable")
    where = np.searchsorted(base_ids[order], part_ids)
    found = where < n_base
    found[found] = base_ids[order][where[found]] == part_ids[found]
    rows = order[where[found]]
    new = ~found
    differs = np.zeros(len(rows), dtype=bool)
    for name in item_arrays:
        array = base.arrays[name]
        incoming = part.arrays.get(name)
        if incoming is not None and incoming.shape[1:] == array.shape[1:]:
            replaced = incoming[found].astype(array.dtype)
            if len(rows):
                differs |= (array[rows] != replaced).reshape(len(rows), -1).any(axis=1)
            array = array.copy()
            array[rows] = replaced
            added = incoming[new]
        else:
            added = np.zeros((int(new.sum()), *array.shape[1:]), dtype=array.dtype)
        base.arrays[name] = np.concatenate([array, added.astype(array.dtype)])
    base.arrays["item_ids"] = np.concatenate([base_ids, part_ids[new].astype(base_ids.dtype)])
    base.cache.clear()
    return int(differs.sum() + new.sum())


def _items(item_ids: Iterable[Any]) -> list[Any]:
    return list(Item.objects.filter(pk__in=list(item_ids)).order_by("pk"))


def embed_part(name: str, item_ids: list[Any]) -> str | None:
    """Embed some items with the live model of ``name`` into a partial artifact in storage.

    Returns:
        The stored path of the partial artifact, or ``None`` when there is no
        live model, no upsert function or no such item.
    """
    live = load_live(name)
    items = _items(item_ids)
    if live is None or not live.strategy.implements("upsert_items") or not items:
        return None
    part = rows_like(live.artifact, [item.pk for item in items])
    result = live.strategy.upsert_items(part, items)
    part = result if isinstance(result, Artifact) else part
    path, _ = save_artifact(part, f"{name}/parts/v{live.version}-{time.time_ns()}")
    return path


def merge_parts(name: str, paths: Iterable[str | None]) -> Any:
    """Upsert partial artifacts into a copy of the live one and activate it as a new version.

    Returns:
        The new ModelVersion, or ``None`` when nothing was embedded or no version is live.
    """
    stored = [p for p in paths if p]
    if not stored:
        return None
    # On any error (TrainingInProgress, a database hiccup) the partials are kept,
    # so that the task's retry can merge them.
    with training_lock(name):  # never interleave with a full training
        version = _merge_locked(name, stored)
    for partial in stored:
        try:
            delete_artifact(partial)
        except Exception:
            logger.warning("Cannot delete partial artifact %s", partial, exc_info=True)
    if version is not None:  # a derived version is a version: the retention rule applies
        prune_artifacts(name)
    return version


def _merge_locked(name: str, stored: list[str]) -> Any:
    live = load_live(name)
    if live is None:
        return None
    base = Artifact(arrays={k: v.copy() for k, v in live.artifact.arrays.items()},
                    meta=dict(live.artifact.meta))
    changed = 0
    for path in stored:
        changed += upsert_rows(base, load_artifact(path))
    if not changed:  # the items came back as they were: no version to make
        logger.info("%s: the embedded items did not change v%s", name, live.version)
        return None
    source = ModelVersion.objects.get(strategy=name, version=live.version)
    number = next_version(name)
    base.meta.update({"version": number, "derived_from": live.version})
    path, size = save_artifact(base, f"{name}/v{number}")
    now = timezone.now()
    version = ModelVersion.objects.create(
        strategy=name, version=number, status=ModelStatus.READY,
        parameters={**source.parameters, "derived_from": live.version,
                    "upserted_items": changed},
        metrics=source.metrics, data_start=source.data_start, data_end=source.data_end,
        n_subjects=source.n_subjects, n_items=len(base.arrays["item_ids"]),
        n_events=source.n_events, artifact=path, artifact_size=size,
        fit_seconds=0.0, total_seconds=0.0, started_at=now, finished_at=now,
        note=f"v{live.version} with {changed} new or changed items embedded.",
    )
    return activate_version(version)


def queue_pending(item_ids: Iterable[Any]) -> bool:
    """Add ``item_ids`` to the embedding queue, debounced.

    Returns:
        Whether the caller should queue the ``embed_pending`` task now (in
        ``EMBED_DEBOUNCE_SECONDS``): ``False`` when one is queued already, or
        no strategy can embed items.
    """
    ids = [int(i) for i in item_ids]
    if not ids:
        return False
    try:
        if not embedding_strategy_names():
            return False
    except Exception:
        logger.warning("Cannot list embedding strategies", exc_info=True)
        return False
    delay = float(personalize_settings.EMBED_DEBOUNCE_SECONDS)
    cache = _cache()
    lock = CacheLock("embed-pending", timeout=10)
    for _ in range(50):
        if lock.acquire():
            break
        time.sleep(0.02)
    try:
        pending = set(cache.get(PENDING_KEY) or ())
        cache.set(PENDING_KEY, sorted(pending | set(ids)), timeout=None)
    finally:
        lock.release()
    # a task queued already takes these ids too
    return bool(cache.add(SCHEDULED_KEY, 1, timeout=max(1, int(delay) + 60)))


def take_pending() -> list[int]:
    """The ids waiting for embedding, removed from the queue."""
    cache = _cache()
    lock = CacheLock("embed-pending", timeout=10)
    for _ in range(50):
        if lock.acquire():
            break
        time.sleep(0.02)
    try:
        ids = list(cache.get(PENDING_KEY) or ())
        cache.delete(PENDING_KEY)
        cache.delete(SCHEDULED_KEY)
    finally:
        lock.release()
    return ids
