"""Which version of each strategy is live: activation, rollback, and the shared version pointer.

The database is the source of truth: one ``active`` ModelVersion per strategy
(a partial unique constraint). The shared cache holds a *version pointer* per
strategy, ``{"version", "path"}``, which web processes read at most every
``ACTIVE_MODEL_CHECK_INTERVAL`` seconds (:mod:`personalize.serving.loader`)
to notice a new version at the cost of one cache read. Activation clears the
pointer before the commit (a process that checks meanwhile reads the
database), publishes it after the commit and sends ``model_activated``. A
pointer lost while the cache was unreachable heals: it expires after
:data:`POINTER_TTL` seconds and is read back from the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from personalize.backends.cache import personalize_cache
from personalize.conf import personalize_settings
from personalize.models import ModelVersion
from personalize.models.training import ModelStatus
from personalize.signals import model_activated
from personalize.strategies import Artifact, Strategy
from personalize.strategies.registry import get_strategy
from personalize.training.storage import delete_artifact, load_artifact

logger = logging.getLogger(__name__)

POINTER_PREFIX = "personalize:active:"
#: The pointer expires now and then so that a pointer write lost while the
#: cache was unreachable heals from the database within this many seconds.
POINTER_TTL = 300
#: Statuses whose artifact can serve (activation and rollback accept these).
SERVABLE = (ModelStatus.READY, ModelStatus.ACTIVE, ModelStatus.REJECTED, ModelStatus.RETIRED)


def pointer_key(name: str) -> str:
    """Where the version pointer of strategy ``name`` is kept in the shared cache."""
    return f"{POINTER_PREFIX}{name}"


def pointer_from_db(name: str) -> dict[str, Any]:
    """The pointer of ``name`` as the database says: ``{"version": None, "path": ""}`` if none."""
    row = (
        ModelVersion.objects.filter(strategy=name, status=ModelStatus.ACTIVE)
        .values("version", "artifact")
        .first()
    )
    if row is None:
        return {"version": None, "path": ""}
    return {"version": row["version"], "path": row["artifact"]}


def publish_pointer(name: str, version: int, path: str) -> None:
    """Tell every process that ``version`` of ``name`` is live (after the database commit)."""
    try:
        personalize_cache().set(pointer_key(name), {"version": version, "path": path},
                                timeout=POINTER_TTL)
    except Exception:  # the pointer heals from the database when it expires
        logger.warning("Cannot publish the model pointer of %s v%s", name, version, exc_info=True)


@dataclass(frozen=True)
class LiveVersion:
    """The live version of a strategy, read from the database and storage."""

    name: str
    version: int
    strategy: Strategy
    artifact: Artifact


def load_live(name: str) -> LiveVersion | None:
    """The live version of ``name`` as it is now, or ``None`` when none is live.

    For batch work (the training gate, embedding new items): web processes
    keep theirs in memory (:func:`personalize.serving.loader.get_active_model`).
    """
    pointer = pointer_from_db(name)
    if pointer["version"] is None or not pointer["path"]:
        return None
    return LiveVersion(name, int(pointer["version"]), get_strategy(name),
                       load_artifact(pointer["path"]))


def next_version(name: str) -> int:
    """The number the next version of ``name`` gets."""
    last = ModelVersion.objects.filter(strategy=name).aggregate(v=Max("version"))["v"]
    return int(last or 0) + 1


def activate_version(version: ModelVersion, *, note: str | None = None) -> ModelVersion:
    """Make ``version`` the live one of its strategy, atomically.

    The previous live version becomes ``retired`` in the same transaction (a
    partial unique constraint allows one ``active`` row per strategy). The
    shared pointer is cleared at once, so a process that checks before the
    commit reads the database, and set to the new version after the commit;
    then ``model_activated`` is sent.

    Args:
        version: a version with an artifact, in a servable status.
        note: replaces the version's note when given (who activated it, and why).

    Raises:
        ValueError: the version never produced an artifact (failed or still training).
    """
    if version.status not in SERVABLE or not version.artifact:
        raise ValueError(
            f"{version} has no servable artifact (status {version.status}); cannot activate it."
        )
    name = version.strategy
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(pk=version.pk).first()
        ModelVersion.objects.filter(strategy=name, status=ModelStatus.ACTIVE).exclude(
            pk=version.pk
        ).update(status=ModelStatus.RETIRED)
        version.status = ModelStatus.ACTIVE
        version.activated_at = timezone.now()
        fields = ["status", "activated_at"]
        if note is not None:
            version.note = note
            fields.append("note")
        version.save(update_fields=fields)
        try:
            personalize_cache().delete(pointer_key(name))
        except Exception:
            logger.warning("Cannot clear the model pointer of %s", name, exc_info=True)
        number, path = version.version, version.artifact
        transaction.on_commit(lambda: _after_activation(name, number, path))
    logger.info("%s v%s is live", name, version.version)
    return version


def _after_activation(name: str, version: int, path: str) -> None:
    publish_pointer(name, version, path)
    model_activated.send(sender=ModelVersion, strategy=name, version=version)


def rollback(name: str, version: int, *, note: str | None = None) -> ModelVersion:
    """Make an earlier (or any servable) version of ``name`` live again.

    Args:
        name: the strategy name.
        version: the version number to bring back.
        note: why, recorded on the version.

    Raises:
        ModelVersion.DoesNotExist: no such version.
        ValueError: it has no artifact to serve.
    """
    target = ModelVersion.objects.get(strategy=name, version=version)
    return activate_version(target, note=note or f"Rolled back to v{version}.")


def prune_artifacts(name: str, keep: int | None = None) -> int:
    """Delete the artifacts of old, non-live versions beyond the newest ``keep``.

    The retention rule (``KEEP_ARTIFACTS``, default 2): of each strategy, the
    live version's file and those of the ``keep`` newest other versions that
    still have one stay; every older file is deleted. Training runs it after
    each version it makes, the item embedder after each version it derives.
    The rows stay (with their metrics and sizes) for the admin's history; only
    the files go, so those versions can no longer be rolled back to.

    Args:
        name: the strategy.
        keep: overrides ``KEEP_ARTIFACTS`` (``None`` there: nothing is deleted).

    Returns:
        How many artifacts were deleted.
    """
    keep = personalize_settings.KEEP_ARTIFACTS if keep is None else keep
    if keep is None:
        return 0
    stale = (
        ModelVersion.objects.filter(strategy=name).exclude(status=ModelStatus.ACTIVE)
        .exclude(artifact="").order_by("-version")[int(keep):]
    )
    deleted = 0
    for version in list(stale):
        try:
            delete_artifact(version.artifact)
        except Exception:
            logger.warning("Cannot delete %s", version.artifact, exc_info=True)
            continue
        # the size stays: it is history, like the metrics
        ModelVersion.objects.filter(pk=version.pk).update(artifact="")
        deleted += 1
    return deleted
