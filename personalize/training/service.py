"""Train one strategy end to end, gate it on a temporal holdout, and activate it.

:func:`train_strategy` is what the Celery task, the management command and the
admin's "Train now" action run::

    lock -> snapshot -> temporal split -> fit(train part) -> evaluate on the holdout
         -> save artifact -> ModelVersion row -> activate if not worse than the live one

Why the activated model is the one fitted on the training part, not a refit on
all data: the gate compares the candidate with the live version on the same
held-out events, and only a model that has not seen them can be judged on
them. The live version was itself fitted on data before *its* cut, and cuts
only move forward, so neither model has seen the current holdout and the
comparison is fair. A refit on everything would double the cost (the target is
a whole training at most 1.5x a bare fit) and ship a model that no one has
measured. What the served model misses is the newest ``HOLDOUT_FRACTION`` of
events in its weights only: history-based strategies score from the live
history on every request, factor models fold the live history in, new items
are embedded on save, and the next training moves the cut forward.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Max
from django.utils import timezone

from personalize.conf import personalize_settings
from personalize.models import Event, ModelVersion
from personalize.models.training import ModelStatus
from personalize.signals import model_activated
from personalize.strategies.base import History, Strategy
from personalize.training import active
from personalize.training.artifacts import Artifact, delete_artifact, save_artifact
from personalize.training.dataset import Dataset
from personalize.training.keys import stable_order, time_order
from personalize.training.locks import training_lock

logger = logging.getLogger(__name__)

#: The metric the gate compares, and the cut-off of every recorded metric.
GATE_METRIC = "ndcg@10"
K = 10
#: Statuses whose artifact can serve (activation and rollback accept these).
SERVABLE = (ModelStatus.READY, ModelStatus.ACTIVE, ModelStatus.REJECTED, ModelStatus.RETIRED)


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth a retry: the database, the broker or Redis is briefly unreachable.

    Other ``DatabaseError`` subclasses (``IntegrityError``, ``ProgrammingError``)
    are bugs or data problems that a retry would only repeat.
    """
    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        from kombu.exceptions import OperationalError as BrokerError

        errors.append(BrokerError)
    except ImportError:  # pragma: no cover - kombu comes with celery
        pass
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover - redis is a core dependency
        pass
    return tuple(errors)


TRANSIENT_ERRORS = _transient_errors()


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
    """The training snapshot of the site's events (``Dataset.from_database``)."""
    return Dataset.from_database()


@dataclass
class Holdout:
    """The training part of a snapshot and what is held out to judge models on it."""

    train: Dataset
    #: Row indices (into ``subject_ids``) of the subjects that are evaluated.
    subjects: np.ndarray
    #: ``(len(subjects), n_items)`` binary CSR of their held-out relevant items.
    relevant: sp.csr_array
    #: Their training histories, as serving would see them at the cut.
    histories: list[History]
    cut: float | None = None
    held_out_events: int = 0

    @property
    def empty(self) -> bool:
        return self.subjects.size == 0


def temporal_holdout(dataset: Dataset, fraction: float, max_subjects: int | None) -> Holdout:
    """Hold out the latest ``fraction`` of events (by time) of ``dataset``.

    Uses the evaluation package's ``temporal`` protocol. A snapshot without
    timestamps, or whose events share one time, has nothing to hold out: the
    whole snapshot trains and the holdout is empty (the gate then has nothing
    to compare on).
    """
    from personalize.evaluation.splits import temporal_split

    nothing = Holdout(train=dataset, subjects=np.empty(0, dtype=np.int64),
                      relevant=sp.csr_array((0, dataset.n_items), dtype=np.float32), histories=[])
    if not 0.0 < fraction < 1.0 or len(dataset.events) == 0:
        return nothing
    try:
        split = temporal_split(dataset, ratio=1.0 - fraction)
    except ValueError:  # no timestamps
        return nothing
    if split.train.interactions.nnz == 0:
        return nothing
    subjects = split.test_subjects
    if max_subjects is not None and subjects.size > max_subjects:
        # A fixed seed: the same snapshot is always judged on the same subjects.
        subjects = np.sort(np.random.default_rng(0).choice(subjects, max_subjects, replace=False))
    cut = split.params.get("cut")
    held_out = int(np.count_nonzero(dataset.events.timestamp >= cut)) if cut is not None else 0
    return Holdout(
        train=split.train, subjects=subjects, relevant=sp.csr_array(split.test[subjects]),
        histories=_histories(split.train, subjects), cut=cut, held_out_events=held_out,
    )


def _histories(train: Dataset, subjects: np.ndarray) -> list[History]:
    """Each subject's training events, oldest first, as :func:`subject_history` builds them.

    One stable sort by subject of the (time-ordered) event log, one ``tolist``
    per column, then a slice per subject.
    """
    events = train.events
    wanted = np.zeros(train.n_subjects, dtype=bool)
    wanted[subjects] = True
    keep = ((events.weight != 0) | np.isfinite(events.rating)) & wanted[events.subject_idx]
    index = np.flatnonzero(keep)
    timestamps = events.timestamp[index]
    if np.any(timestamps[1:] < timestamps[:-1]):  # a log not in time order (built by hand)
        index = index[time_order(timestamps)]
    index = index[stable_order(events.subject_idx[index], train.n_subjects)]
    owners = events.subject_idx[index]
    starts = np.searchsorted(owners, subjects, side="left").tolist()
    ends = np.searchsorted(owners, subjects, side="right").tolist()
    rating = events.rating[index]
    rated = np.isfinite(rating)
    weight = events.weight[index]
    ids = train.item_ids[events.item_idx[index]]
    item_ids = ids.tolist()
    weights = np.where(rated & (weight == 0), 1.0, weight).tolist()
    stamps = events.timestamp[index].tolist()
    rated_at = np.flatnonzero(rated)
    rated_ids, rated_values = ids[rated_at].tolist(), rating[rated_at].tolist()
    rated_starts = np.searchsorted(rated_at, starts).tolist()
    rated_ends = np.searchsorted(rated_at, ends).tolist()
    return [
        History(item_ids=item_ids[start:end], weights=weights[start:end],
                timestamps=stamps[start:end],
                ratings=dict(zip(rated_ids[r_start:r_end], rated_values[r_start:r_end],
                                 strict=True)),
                subject_id=subject_id)
        for subject_id, start, end, r_start, r_end in zip(
            train.subject_ids[subjects].tolist(), starts, ends, rated_starts, rated_ends,
            strict=True,
        )
    ]


def evaluate_on_holdout(strategy: Strategy, artifact: Artifact, holdout: Holdout) -> dict[str, Any]:
    """Ranking metrics at 10 of ``artifact`` on the held-out events.

    A subject the model cannot answer for (``CannotRecommend``) counts as a
    miss; any other exception propagates (a model that crashes must not serve).

    Returns:
        ``{"ndcg@10", "hit_rate@10", "recall@10", "precision@10", "map@10",
        "mrr@10", "coverage@10", "subjects", "cannot_recommend"}``; empty when
        nothing is held out.
    """
    from personalize.evaluation import metrics

    if holdout.empty:
        return {}
    index = {v: i for i, v in enumerate(holdout.train.item_ids.tolist())}
    recs = np.full((holdout.subjects.size, K), -1, dtype=np.int64)
    cannot = 0
    # one batch: strategies that score many histories in one product do so
    for row, scored in enumerate(strategy.recommend_many(artifact, holdout.histories, K)):
        if scored is None:
            cannot += 1
            continue
        positions = [index.get(item_id, -1) for item_id, _ in scored[:K]]
        recs[row, : len(positions)] = positions
    # An item repeated in one list (an unknown id mapped to -1 twice is fine) is a bug.
    valid = np.where(recs >= 0, recs, -1 - np.arange(K))
    ordered = np.sort(valid, axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise ValueError(f"{type(strategy).__name__} returned the same item twice in one list.")
    ranking = metrics.ranking_metrics(recs, holdout.relevant, K)
    result: dict[str, Any] = {f"{name}@{K}": value for name, value in ranking.items()}
    result[f"coverage@{K}"] = metrics.catalog_coverage(recs, holdout.train.n_items, K)
    result["subjects"] = int(holdout.subjects.size)
    result["cannot_recommend"] = cannot
    return {key: _json_number(value) for key, value in result.items()}


def _json_number(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --- the training run ---------------------------------------------------------------


def _spec_parameters(name: str, strategy: Strategy) -> dict[str, Any]:
    from personalize.strategies.registry import configured_strategy_specs

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


def _next_version(name: str) -> int:
    last = ModelVersion.objects.filter(strategy=name).aggregate(v=Max("version"))["v"]
    return int(last or 0) + 1


def _ts(value: float | None) -> datetime | None:
    if value is None or not np.isfinite(value) or value <= 0:
        return None
    return datetime.fromtimestamp(float(value), tz=UTC)


#: The stages :func:`train_strategy` reports to its ``progress`` callback, in order.
STAGES = ("snapshot", "fit", "evaluate", "save")


def train_strategy(
    name: str, *, force: bool = False, progress: Callable[[str], Any] | None = None
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

    Returns:
        The new ModelVersion: ``active`` when it went live, ``rejected`` when the
        gate kept the live one (``note`` says why), ``failed`` when fitting or
        evaluating raised (``error`` holds the traceback; the live version
        keeps serving). Or the unchanged previous version, see above.

    Raises:
        TrainingInProgress: another training of ``name`` holds the lock.
        KeyError: ``name`` is not a configured strategy.
        The transient errors of :data:`TRANSIENT_ERRORS` after the failure was
        recorded, so that a Celery task retries.
    """
    from personalize.strategies.registry import get_strategy

    started = time.perf_counter()
    strategy = get_strategy(name)
    with training_lock(name):
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
        _mark_threshold_start(name, fingerprint)
        version = ModelVersion.objects.create(
            strategy=name, version=_next_version(name), status=ModelStatus.TRAINING,
            parameters=parameters, started_at=timezone.now(),
        )
        try:
            _run(name, strategy, version, started, progress or (lambda stage: None))
        except Exception as exc:
            _record_failure(version, exc, started)
            if isinstance(exc, TRANSIENT_ERRORS):
                raise
        return version


def _run(name: str, strategy: Strategy, version: ModelVersion, started: float,
         progress: Callable[[str], Any]) -> None:
    dataset = take_snapshot()
    holdout = temporal_holdout(
        dataset, float(personalize_settings.HOLDOUT_FRACTION),
        personalize_settings.HOLDOUT_MAX_SUBJECTS,
    )
    train = holdout.train
    progress("snapshot")
    fit_started = time.perf_counter()
    artifact = strategy.fit(train)
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

    artifact.meta.setdefault("strategy", version.parameters["class"])
    artifact.meta.setdefault("artifact_version", type(strategy).artifact_version)
    artifact.meta.setdefault("options", version.parameters["options"])
    artifact.meta.update({"name": name, "version": version.version,
                          "trained_at": timezone.now().isoformat()})
    version.artifact, version.artifact_size = save_artifact(artifact, f"{name}/v{version.version}")

    activate, note = _gate(name, strategy, metrics, holdout)
    progress("evaluate")
    version.note = note
    version.finished_at = timezone.now()
    version.total_seconds = time.perf_counter() - started
    version.status = ModelStatus.READY
    version.save()
    if activate:
        activate_version(version)
        # this process serves the new version from memory, not from a re-read
        active.adopt(name, version.version, version.artifact, strategy, artifact)
    else:
        version.status = ModelStatus.REJECTED
        version.save(update_fields=["status"])
    prune_artifacts(name)
    progress("save")


def _gate(name: str, strategy: Strategy, metrics: dict[str, Any],
          holdout: Holdout) -> tuple[bool, str]:
    """Whether the candidate may go live, and a sentence saying why."""
    active.invalidate_local(name)  # judge against what is live now, not a second ago
    live = active.get_active_model(name)
    if live is None:
        return True, "No live version: activated."
    candidate = metrics.get(GATE_METRIC)
    if candidate is None:
        return True, (f"Nothing held out to compare on; activated over v{live.version} "
                      "because it has newer data.")
    try:
        live_metrics = evaluate_on_holdout(live.strategy, live.artifact, holdout)
    except Exception as exc:  # a live model that crashes should be replaced
        logger.exception("%s v%s cannot be evaluated", name, live.version)
        return True, f"The live v{live.version} failed on the holdout ({exc!r}): activated."
    metrics[f"live_{GATE_METRIC}"] = live_metrics.get(GATE_METRIC)
    metrics["live_version"] = live.version
    reference = live_metrics.get(GATE_METRIC)
    if reference is None:
        return True, f"The live v{live.version} has no {GATE_METRIC} on this holdout: activated."
    tolerance = float(personalize_settings.ACTIVATION_TOLERANCE)
    comparison = (f"{GATE_METRIC} {candidate:.4f} vs {reference:.4f} for the live v{live.version} "
                  f"on the same holdout (tolerance {tolerance:g})")
    if candidate >= reference - tolerance:
        return True, f"{comparison}: activated."
    return False, f"{comparison}: worse by {reference - candidate:.4f}; v{live.version} stays live."


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
        status=ModelStatus.FAILED, finished_at=timezone.now(),
        note="The worker stopped before this training finished.",
    )


def _mark_threshold_start(name: str, fingerprint: dict[str, int]) -> None:
    from personalize.training import triggers

    triggers.mark_trained(name, fingerprint["last_event_id"])


# --- activation, rollback, artifact housekeeping ------------------------------------


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
            active._cache().delete(active.pointer_key(name))
        except Exception:
            logger.warning("Cannot clear the model pointer of %s", name, exc_info=True)
        active.invalidate_local(name)
        number, path = version.version, version.artifact
        transaction.on_commit(lambda: _after_activation(name, number, path))
    logger.info("%s v%s is live", name, version.version)
    return version


def _after_activation(name: str, version: int, path: str) -> None:
    active.publish_pointer(name, version, path)
    oldest = (ModelVersion.objects.filter(status=ModelStatus.ACTIVE)
              .order_by("started_at").values_list("started_at", flat=True).first())
    if oldest is not None:
        active.prune_erased(oldest.timestamp())
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

    The rows stay (with their metrics) for the admin's history; only the files
    go, so those versions can no longer be rolled back to.

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
