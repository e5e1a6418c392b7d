"""Train one strategy end to end, gate it on a temporal holdout, and activate it.

:func:`train_strategy` is what the Celery task, the management command and the
admin's "Train now" action run::

    lock -> snapshot -> temporal split -> fit(train part) -> evaluate on the holdout
         -> save artifact -> ModelVersion row -> activate if not worse than the live one

The gate is :mod:`personalize.training.gate`; activation, rollback and the
shared version pointer are :mod:`personalize.training.activation`.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.db import InterfaceError, OperationalError
from django.db.models import Max
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from personalize.backends.cache import CacheUnavailable
from personalize.conf import personalize_settings
from personalize.dataset import Dataset
from personalize.models import Event, ModelVersion
from personalize.models.training import ModelStatus
from personalize.strategies import Artifact, ArtifactFormatError, Strategy
from personalize.strategies.registry import configured_strategy_specs, get_strategy
from personalize.training import triggers
from personalize.training.activation import (
    SERVABLE,
    activate_version,
    load_live,
    next_version,
    prune_artifacts,
)
from personalize.training.gate import evaluate_on_holdout, judge, temporal_holdout
from personalize.training.locks import LockKeeper, LockLost, training_lock
from personalize.training.snapshot import database_snapshot
from personalize.training.storage import save_artifact

logger = logging.getLogger(__name__)

#: Errors worth a retry: the database, the broker or the cache is briefly
#: unreachable (the training lock lives in the cache, so a cache that cannot be
#: reached while the lock is taken or renewed is one of them). Other
#: ``DatabaseError`` subclasses (``IntegrityError``, ``ProgrammingError``) are
#: bugs or data problems that a retry would only repeat.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, BrokerError, RedisConnectionError, RedisTimeoutError,
    CacheUnavailable,
)
#: The note of a version whose worker stopped (killed, out of memory) before it finished.
WORKER_LOST_NOTE = "The worker stopped before this training finished."
#: A re-delivered training is given up after this many trainings of the
#: strategy in a row lost their worker (a fit that runs out of memory would
#: otherwise kill worker after worker).
MAX_WORKER_LOSSES = 3


class WorkerKeepsDying(Exception):
    """The last trainings of a strategy all lost their worker; a re-delivery is not run."""


# --- the snapshot and the holdout -------------------------------------------------


def data_fingerprint() -> dict[str, int]:
    """How many events exist and the newest event id: cheap, and changes when data does.

    Two queries on purpose: alone, ``COUNT(*)`` can be answered from the primary
    key index (an index-only scan on a vacuumed PostgreSQL table) and ``MAX(id)``
    from the index's end, where one query with both reads the whole table.
    """
    last = Event.objects.aggregate(last=Max("id"))["last"]
    return {"events": Event.objects.count(), "last_event_id": int(last or 0)}


def take_snapshot() -> Dataset:
    """The training snapshot of the site's events."""
    return database_snapshot()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --- the training run ---------------------------------------------------------------


def _spec_parameters(name: str, strategy: Strategy) -> dict[str, Any]:
    spec = configured_strategy_specs()[name]
    return {"class": spec.path, "options": _jsonable(strategy.options.as_dict())}


def _unchanged_version(name: str, parameters: dict[str, Any]) -> ModelVersion | None:
    """The latest finished version trained on exactly this data with these options."""
    latest = (
        ModelVersion.objects.filter(strategy=name, status__in=SERVABLE)
        .order_by("-version")
        .first()
    )
    if latest is None:
        return None
    same = all(latest.parameters.get(key) == parameters[key]
               for key in ("class", "options", "fingerprint"))
    return latest if same else None


def _ts(value: float | None) -> datetime | None:
    if value is None or not np.isfinite(value) or value <= 0:
        return None
    return datetime.fromtimestamp(float(value), tz=UTC)


#: The stages :func:`train_strategy` reports to its ``progress`` callback, in order.
STAGES = ("snapshot", "fit", "evaluate", "save")


def train_strategy(
    name: str, *, force: bool = False, progress: Callable[[str], Any] | None = None,
    rerun: bool = False,
) -> ModelVersion:
    """Train strategy ``name`` now, in this process, and activate it if it passes the gate.

    Idempotent: when the newest finished version of ``name`` was trained on the
    same events (same count and newest event id) with the same options, that
    version is returned and nothing is trained, unless ``force`` is true. A
    Celery retry or a duplicate delivery therefore costs two queries.

    Args:
        name: a configured strategy name.
        force: train even if nothing changed since the last version.
        progress: called with each finished stage of :data:`STAGES` (the
            management command moves its progress bar with it).
        rerun: this is a re-delivered or retried task's run. It is refused
            (:class:`WorkerKeepsDying`) when the last :data:`MAX_WORKER_LOSSES`
            trainings of ``name`` all lost their worker.

    Returns:
        The new ModelVersion: ``active`` when it went live, ``rejected`` when the
        gate kept the live one (``note`` says why), ``failed`` when fitting or
        evaluating raised (``error`` holds the traceback; the live version
        keeps serving). Or the unchanged previous version, see above.

    Raises:
        TrainingInProgress: another training of ``name`` holds the lock.
        LockLost: another training took the lock over while this one ran
            (recorded as a failed version; nothing was activated).
        WorkerKeepsDying: see ``rerun``.
        KeyError: ``name`` is not a configured strategy.
        The transient errors of :data:`TRANSIENT_ERRORS` after the failure was
        recorded, so that a Celery task retries.
    """
    started = time.perf_counter()
    strategy = get_strategy(name)
    with training_lock(name) as held:
        fingerprint = data_fingerprint()
        parameters = {
            **_spec_parameters(name, strategy),
            "fingerprint": fingerprint,
            "holdout_fraction": personalize_settings.HOLDOUT_FRACTION,
            "activation_tolerance": personalize_settings.ACTIVATION_TOLERANCE,
        }
        if not force:
            unchanged = _unchanged_version(name, parameters)
            if unchanged is not None:
                logger.info("%s: no new events since v%s; not retraining", name, unchanged.version)
                return unchanged
        _fail_orphans(name)
        if rerun and worker_losses(name) >= MAX_WORKER_LOSSES:
            raise WorkerKeepsDying(
                f"The last {MAX_WORKER_LOSSES} trainings of {name!r} lost their worker (out of "
                "memory, killed?); the re-delivered task is not run again. The next scheduled "
                "or manual training tries again."
            )
        _mark_threshold_start(name, fingerprint)
        version = ModelVersion.objects.create(
            strategy=name, version=next_version(name), status=ModelStatus.TRAINING,
            parameters=parameters, started_at=timezone.now(),
        )
        try:
            _run(name, strategy, version, started, progress or (lambda stage: None), held)
        except Exception as exc:
            _record_failure(version, exc, started)
            if isinstance(exc, (*TRANSIENT_ERRORS, LockLost)):
                raise
        return version


def _run(name: str, strategy: Strategy, version: ModelVersion, started: float,
         progress: Callable[[str], Any], held: LockKeeper) -> None:
    dataset = take_snapshot()
    holdout = temporal_holdout(
        dataset, float(personalize_settings.HOLDOUT_FRACTION),
        personalize_settings.HOLDOUT_MAX_SUBJECTS,
    )
    train = holdout.train
    progress("snapshot")
    fit_started = time.perf_counter()
    artifact = fit_strategy(name, strategy, train)
    version.fit_seconds = time.perf_counter() - fit_started
    progress("fit")
    metrics = evaluate_on_holdout(strategy, artifact, holdout)

    timestamps = train.events.timestamp
    version.n_subjects = int(np.count_nonzero(np.diff(sp.csr_array(train.interactions).indptr)))
    version.n_items = int(train.n_items)
    version.n_events = len(train.events)
    version.data_start = _ts(float(timestamps.min())) if len(timestamps) else None
    version.data_end = _ts(float(timestamps.max())) if len(timestamps) else None
    version.parameters = {
        **version.parameters,
        "holdout": {
            "cut": cut.isoformat() if (cut := _ts(holdout.cut)) else None,
            "events": holdout.held_out_events,
            "subjects": int(holdout.subjects.size),
        },
    }
    version.metrics = metrics

    # an artifact not built with Strategy.new_artifact could not be served: fail here
    strategy.check_artifact(artifact)
    artifact.meta.update({"name": name, "version": version.version,
                          "trained_at": timezone.now().isoformat()})
    version.artifact, version.artifact_size = save_artifact(artifact, f"{name}/v{version.version}")

    activate, note = judge(name, metrics, holdout)
    progress("evaluate")
    held.verify()  # a training that lost its lock must not activate over the one that took it
    version.note = note
    version.finished_at = timezone.now()
    version.total_seconds = time.perf_counter() - started
    version.status = ModelStatus.READY
    version.save()
    if activate:
        activate_version(version)
    else:
        version.status = ModelStatus.REJECTED
        version.save(update_fields=["status"])
    prune_artifacts(name)
    progress("save")


def fit_strategy(name: str, strategy: Strategy, dataset: Dataset) -> Artifact:
    """``strategy.refit(dataset, live artifact)`` where it can reuse one, else ``fit(dataset)``.

    Only strategies that override :meth:`Strategy.refit` are given the live
    version's artifact (read from storage): the embeddings plugin then encodes
    only the texts that changed.
    """
    if strategy.implements("refit"):
        previous = _live_artifact(name, strategy)
        if previous is not None:
            return strategy.refit(dataset, previous)
    return strategy.fit(dataset)


def _live_artifact(name: str, strategy: Strategy) -> Artifact | None:
    """The live artifact of ``name`` if ``strategy`` can read it; ``None`` (logged) if not."""
    try:
        live = load_live(name)
        if live is None:
            return None
        strategy.check_artifact(live.artifact)
    except ArtifactFormatError as exc:
        logger.info("%s: the live artifact cannot be reused (%s); fitting from scratch",
                    name, exc)
        return None
    except Exception:  # a missing file: a full fit still works
        logger.warning("%s: cannot read the live artifact; fitting from scratch", name,
                       exc_info=True)
        return None
    return live.artifact


def _record_failure(version: ModelVersion, exc: BaseException, started: float) -> None:
    live = (ModelVersion.objects.filter(strategy=version.strategy, status=ModelStatus.ACTIVE)
            .values_list("version", flat=True).first())
    version.status = ModelStatus.FAILED
    version.error = traceback.format_exc()
    version.note = (f"Training failed: {type(exc).__name__}: {exc}. "
                    + (f"v{live} stays live." if live else "No version is live."))
    version.finished_at = timezone.now()
    version.total_seconds = time.perf_counter() - started
    logger.error("Training %s v%s failed", version.strategy, version.version, exc_info=exc)
    try:
        version.save()
    except Exception:  # the database may be what failed; the log has it
        logger.exception("Cannot record the failure of %s v%s", version.strategy, version.version)


def _fail_orphans(name: str) -> None:
    """Rows left in ``training`` by a worker that died: we hold the lock, so none is running."""
    ModelVersion.objects.filter(strategy=name, status=ModelStatus.TRAINING).update(
        status=ModelStatus.FAILED, finished_at=timezone.now(), note=WORKER_LOST_NOTE,
    )


def worker_losses(name: str) -> int:
    """How many of the newest versions of ``name`` in a row lost their worker."""
    notes = (ModelVersion.objects.filter(strategy=name).order_by("-version")
             .values_list("status", "note")[:MAX_WORKER_LOSSES])
    count = 0
    for status, note in notes:
        if status != ModelStatus.FAILED or note != WORKER_LOST_NOTE:
            break
        count += 1
    return count


def _mark_threshold_start(name: str, fingerprint: dict[str, int]) -> None:
    triggers.mark_trained(name, fingerprint["last_event_id"])


