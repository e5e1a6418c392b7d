"""Which variant of a placement's running experiment a subject gets (serving asks here).

* **The running experiment** of a placement (:func:`running_experiment`) is read
  once per process and kept until the serving generation moves (saving or
  deleting an Experiment, a Variant or an AllocationSnapshot moves it, see
  :mod:`personalize.serving.receivers`), so a placement without an experiment
  costs no query per request. Only an experiment with status ``running`` whose
  ``started_at <= now < ended_at`` (where set) assigns anyone.
* **The variant** (:func:`assign`): a subject who already has one keeps it
  (sticky): the :class:`~personalize.models.Assignment` row written at their
  first exposure, mirrored in the shared cache under :func:`assignment_key`
  so that the lookup rides on the block's own cache read. A subject without one
  falls in the variant whose share holds ``bucket(salt, Subject.key)``
  (:mod:`personalize.experiments.buckets`): ``Variant.weight`` under fixed
  allocation, the latest ``AllocationSnapshot`` under Thompson sampling (equal
  shares before the first). Subjects without ``analytics`` consent, and
  visitors without a subject, get the control (:attr:`ExperimentConfig.control`)
  and are never recorded.
* **Recording** happens with the exposure (:mod:`personalize.outcomes.exposures`):
  :func:`remember_assignment` at once in the cache, the row when the exposure
  is written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from personalize.backends.cache import personalize_cache, warn_unreachable
from personalize.consent.cache import subject_cache_token
from personalize.experiments.buckets import bucket, choose
from personalize.models import AllocationSnapshot, Assignment, Experiment, Variant

logger = logging.getLogger(__name__)

#: Placements whose experiments are kept per process (least recently used dropped first).
MAX_HELD = 1024
#: Seconds a subject's assignment stays in the shared cache after it was last read
#: from the database or recorded (the database row is the record; this saves the query).
ASSIGNMENT_CACHE_TTL = 60 * 60 * 24 * 30
#: Seconds experiments loaded while the cache was unreachable are trusted.
UNKNOWN_MAX_AGE = 60.0
#: Keys a variant of kind ``config`` may override in its placement's configuration.
CONFIG_KEYS = frozenset({"strategy", "fallback", "diversity", "limit", "filters"})

#: ``generation`` argument of :func:`running_experiment`: whatever is held will do.
ANY: Any = type("AnyGeneration", (), {"__repr__": lambda self: "ANY"})()
_STALE: Any = type("StaleGeneration", (), {"__repr__": lambda self: "STALE"})()


@dataclass(frozen=True, eq=False)
class VariantConfig:
    """One arm of a running experiment, as serving reads it.

    Compared and hashed by identity: each load of an experiment makes new
    objects, so whatever serving derives from one (keyed by it) is derived
    again after an edit.

    Attributes:
        id: the Variant's pk.
        key: its short name (``"a"``, ``"ease"``).
        kind: ``strategy``, ``config``, ``popular`` or ``holdout`` (``Variant.Kind``).
        strategy: the strategy a ``strategy`` variant serves.
        config: what a ``config`` variant overrides (keys of :data:`CONFIG_KEYS`).
        is_control: whether this is the experiment's control.
    """

    id: int
    key: str
    kind: str
    strategy: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    is_control: bool = False

    @property
    def is_holdout(self) -> bool:
        """A holdout shows no recommendations."""
        return self.kind == Variant.Kind.HOLDOUT


@dataclass(frozen=True)
class ExperimentConfig:
    """A running experiment of one placement, with its variants and current traffic shares.

    Attributes:
        id: the Experiment's pk.
        name: its name.
        placement: the placement it runs on.
        salt: the hashing salt of its buckets.
        started_at: assigns nobody before this time (``None``: from now).
        ended_at: assigns nobody from this time on (``None``: until stopped).
        variants: ordered by pk (the order buckets are laid out in).
        weights: each variant's share of new subjects, normalised.
    """

    id: int
    name: str
    placement: str
    salt: str
    started_at: datetime | None
    ended_at: datetime | None
    variants: tuple[VariantConfig, ...]
    weights: tuple[float, ...]

    @property
    def control(self) -> VariantConfig:
        """The control variant (what subjects outside the experiment see)."""
        return next(v for v in self.variants if v.is_control)

    def variant(self, variant_id: Any) -> VariantConfig | None:
        """The variant with pk ``variant_id``, if it belongs to this experiment."""
        return next((v for v in self.variants if v.id == variant_id), None)

    def is_live(self, now: datetime) -> bool:
        """Whether the experiment assigns subjects at ``now``."""
        return ((self.started_at is None or self.started_at <= now)
                and (self.ended_at is None or now < self.ended_at))

    def bucketed(self, subject_key: str) -> VariantConfig:
        """The variant a subject without an assignment falls in (deterministic)."""
        return self.variants[choose(self.weights, bucket(self.salt, subject_key))]


@dataclass(frozen=True)
class Arm:
    """The variant one subject gets in one experiment.

    Attributes:
        experiment: the running experiment.
        variant: the variant served.
        enrolled: whether the subject takes part (``analytics`` consent and a
            subject): only then is the exposure logged and the assignment recorded.
        recorded: whether the assignment was already recorded (cache or
            database), so the exposure need not record it again.
    """

    experiment: ExperimentConfig
    variant: VariantConfig
    enrolled: bool
    recorded: bool


class InvalidExperiment(ValueError):
    """A running experiment that cannot be served (no variants, no single control, ...)."""


def experiment_problems(experiment: Experiment, variants: list[Variant]) -> list[str]:
    """What makes an experiment impossible to serve (empty when it can run).

    Used when a running experiment is loaded (it is then skipped, and the
    placement serves as if it had none) and by the system check
    ``personalize.E048``.
    """
    problems = []
    if not variants:
        problems.append("it has no variants")
    controls = [v.key for v in variants if v.is_control]
    if variants and len(controls) != 1:
        problems.append(f"it needs exactly one control variant, it has {len(controls)}"
                        + (f" ({', '.join(controls)})" if controls else ""))
    if (variants and experiment.allocation == Experiment.Allocation.FIXED
            and not any(v.weight > 0 for v in variants)):
        problems.append("no variant has a positive traffic weight")
    for v in variants:
        if v.kind == Variant.Kind.STRATEGY and not v.strategy:
            problems.append(f"variant {v.key!r} serves a strategy but names none")
        if v.kind == Variant.Kind.CONFIG:
            if not isinstance(v.config, dict):
                problems.append(f"variant {v.key!r}: its configuration is not a JSON object")
            elif set(v.config) - CONFIG_KEYS:
                unknown = ", ".join(sorted(set(v.config) - CONFIG_KEYS))
                problems.append(f"variant {v.key!r}: unknown configuration keys {unknown} "
                                f"(allowed: {', '.join(sorted(CONFIG_KEYS))})")
    return problems


def _weights(experiment: Experiment, variants: list[Variant],
             snapshot: AllocationSnapshot | None) -> tuple[float, ...]:
    """The variants' shares of new subjects (see the module docstring)."""
    if experiment.allocation != Experiment.Allocation.THOMPSON:
        raw = [max(float(v.weight), 0.0) for v in variants]
    elif snapshot is None or not isinstance(snapshot.weights, dict):
        raw = [1.0] * len(variants)  # before the first rollup: equal shares
    else:
        # a variant the snapshot does not name (added since) keeps the floor
        floor = float(experiment.bandit_floor)
        raw = []
        for v in variants:
            share = snapshot.weights.get(v.key)
            if isinstance(share, int | float) and not isinstance(share, bool):
                raw.append(max(float(share), 0.0))
            else:
                raw.append(floor)
        if not any(raw):
            raw = [1.0] * len(variants)
    total = sum(raw)
    return tuple(w / total for w in raw)


def _config(experiment: Experiment) -> ExperimentConfig:
    variants = sorted(experiment.variants.all(), key=lambda v: v.pk)
    problems = experiment_problems(experiment, variants)
    if problems:
        raise InvalidExperiment("; ".join(problems))
    snapshot = None
    if experiment.allocation == Experiment.Allocation.THOMPSON:  # its latest allocation only
        snapshot = experiment.allocations.order_by("-at", "-id").first()
    return ExperimentConfig(
        id=experiment.pk, name=experiment.name, placement=experiment.placement,
        salt=experiment.salt, started_at=experiment.started_at, ended_at=experiment.ended_at,
        variants=tuple(
            VariantConfig(v.pk, v.key, v.kind, v.strategy,
                          dict(v.config) if isinstance(v.config, dict) else {}, v.is_control)
            for v in variants
        ),
        weights=_weights(experiment, variants, snapshot),
    )


def load_running(placement: str) -> tuple[ExperimentConfig, ...]:
    """The running experiments of a placement that have not ended, earliest start first.

    An experiment that cannot be served is logged and left out (the system
    check ``personalize.E048`` names it too).
    """
    rows = (
        Experiment.objects.filter(placement=placement, status=Experiment.Status.RUNNING)
        .exclude(ended_at__lte=timezone.now())
        .prefetch_related("variants")
        .order_by("started_at", "id")
    )
    loaded = []
    for row in rows:
        try:
            loaded.append(_config(row))
        except InvalidExperiment as exc:
            logger.error("Experiment %r on placement %r cannot run (%s); the placement serves "
                         "without it", row.name, placement, exc)
    return tuple(loaded)


_lock = threading.Lock()
#: placement -> (its running experiments, the generation they were read under, when)
_held: OrderedDict[str, tuple[tuple[ExperimentConfig, ...], Any, float]] = OrderedDict()


def _live(
    experiments: tuple[ExperimentConfig, ...], now: datetime | None
) -> ExperimentConfig | None:
    if not experiments:  # most placements: no clock read
        return None
    now = now or timezone.now()
    return next((e for e in experiments if e.is_live(now)), None)


def held_experiment(placement: str, now: datetime | None = None) -> ExperimentConfig | None:
    """The live experiment this process holds for ``placement``, without any query.

    Serving names the cache keys of its variants before it has read the
    generation; :func:`running_experiment` then confirms it.
    """
    held = _held.get(placement)
    return _live(held[0], now) if held is not None else None


def running_experiment(
    placement: str, generation: Any = ANY, now: datetime | None = None
) -> ExperimentConfig | None:
    """The experiment that assigns subjects of ``placement`` now, if any.

    Args:
        placement: the placement name.
        generation: the serving generation just read; what this process holds
            is read again when it was loaded under another one. ``None``: the
            generation is unknown (the cache is unreachable): what is held is
            trusted for :data:`UNKNOWN_MAX_AGE` seconds. ``ANY``: whatever is held.
        now: the time to judge ``started_at`` / ``ended_at`` against (default now).

    Returns:
        The live experiment (the earliest started, should several overlap), or
        ``None``. A database error is logged and counts as no experiment.
    """
    held = _held.get(placement)
    if held is not None:
        experiments, loaded_under, loaded_at = held
        current = (
            generation is ANY
            or (generation is None and time.monotonic() - loaded_at < UNKNOWN_MAX_AGE)
            or (generation is not None and loaded_under == generation)
        )
        if current:
            return _live(experiments, now)
    try:
        experiments = load_running(placement)
    except DatabaseError:
        logger.warning("Cannot read the experiments of placement %r; serving without them",
                       placement, exc_info=True)
        return None
    with _lock:
        _held[placement] = (experiments, _STALE if generation in (ANY, None) else generation,
                            time.monotonic())
        _held.move_to_end(placement)
        while len(_held) > MAX_HELD:
            _held.popitem(last=False)
    return _live(experiments, now)


def clear() -> None:
    """Forget every experiment this process holds (tests use it)."""
    with _lock:
        _held.clear()


# --- assignments ----------------------------------------------------------------


def assignment_key(experiment_id: int, subject_id: int) -> str:
    """Where a subject's variant in one experiment is cached (carries ``subject:<pk>``)."""
    return f"personalize:exp:{int(experiment_id)}:{subject_cache_token(subject_id)}"


def stored_variant(experiment: ExperimentConfig, subject_id: int) -> VariantConfig | None:
    """The variant recorded for a subject in the database, mirrored into the cache."""
    variant_id = (
        Assignment.objects.filter(experiment_id=experiment.id, subject_id=subject_id)
        .values_list("variant_id", flat=True).first()
    )
    variant = experiment.variant(variant_id) if variant_id is not None else None
    if variant is not None:
        remember_assignment(experiment.id, subject_id, variant.id)
    return variant


def assign(
    experiment: ExperimentConfig,
    subject_id: int | None,
    subject_key: str | None,
    *,
    enrolled: bool,
    cached: Any = None,
) -> Arm:
    """The variant a subject gets (see the module docstring).

    Args:
        experiment: the running experiment.
        subject_id: the subject's pk (``None``: a visitor without a subject).
        subject_key: the subject's pseudonymous key (what is hashed).
        enrolled: whether the subject may take part (``analytics`` consent).
        cached: the value of :func:`assignment_key` read with the block, if it
            was read (``None``: not found or not read).

    Returns:
        The :class:`Arm`; the control, not enrolled, for a visitor without a
        subject or consent.
    """
    if subject_id is None or subject_key is None or not enrolled:
        return Arm(experiment, experiment.control, enrolled=False, recorded=False)
    variant = experiment.variant(cached) if cached is not None else None
    if variant is not None:
        return Arm(experiment, variant, enrolled=True, recorded=True)
    try:
        variant = stored_variant(experiment, subject_id)
    except DatabaseError:
        logger.warning("Cannot read the assignment of subject %s in experiment %r; hashing",
                       subject_id, experiment.name, exc_info=True)
    if variant is not None:
        return Arm(experiment, variant, enrolled=True, recorded=True)
    return Arm(experiment, experiment.bucketed(subject_key), enrolled=True, recorded=False)


def remember_assignment(experiment_id: int, subject_id: int, variant_id: int) -> None:
    """Cache a subject's variant (its first exposure, or read back from the database)."""
    try:
        personalize_cache().set(assignment_key(experiment_id, subject_id), int(variant_id),
                                timeout=ASSIGNMENT_CACHE_TTL)
    except Exception as exc:
        warn_unreachable("assignments are read from the database", exc)


def forget_assignments(subject_ids: Iterable[int]) -> None:
    """Drop the cached assignments of subjects (a merge may have changed them).

    The next request reads them back from the database.
    """
    ids = sorted({int(s) for s in subject_ids})
    if not ids:
        return
    # the subjects' recorded experiments, and the running ones (an assignment
    # recorded at an exposure may still wait in the exposure buffer)
    try:
        experiments = set(Assignment.objects.filter(subject_id__in=ids)
                          .values_list("experiment_id", flat=True))
        experiments.update(Experiment.objects.filter(status=Experiment.Status.RUNNING)
                           .values_list("id", flat=True))
    except DatabaseError:
        logger.warning("Cannot read the assignments of subjects %s; their cached ones expire "
                       "by their TTL", ids, exc_info=True)
        return
    keys = [assignment_key(e, s) for e in experiments for s in ids]
    if not keys:
        return
    try:
        personalize_cache().delete_many(keys)
    except Exception as exc:
        warn_unreachable("cached assignments expire by their TTL instead", exc)
