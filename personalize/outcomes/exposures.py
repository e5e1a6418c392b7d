"""Exposures: one row per recommendation block rendered to a subject, its impression id.

The template tags and the REST API call :func:`log_exposure` with the
:class:`~personalize.serving.served.Served` block they render. It returns the
**impression id** (the :class:`~personalize.models.Exposure`'s ``id``) that
the block's markup (``data-personalize-impression``) and the REST payload
(``"impression"``) carry and that clicks send back, or ``None`` when nothing
is logged:

* the subject does not allow ``analytics`` (or the request carries a GPC /
  DNT signal), or the visitor has no subject yet;
* the block is empty (a holdout variant's empty block is the exception: it
  is logged with ``items=[]`` so the holdout's subjects are counted);
* ``EXPOSURE_LOGGING`` is off.

Admin previews never call it. A subject's first exposure in an experiment
records their variant: at once in the shared cache (the next request reads it
there), and as an :class:`~personalize.models.Assignment` row written with the
exposure (the first one written wins, so the assignment is the variant of the
first exposure).

Rows go through :class:`~personalize.outcomes.buffer.ExposureBuffer`: the page
never waits for the database, and a database outage delays the rows, never
drops them (within ``EXPOSURE_BUFFER_SIZE``). Exposures of a subject erased
meanwhile are dropped (``subject_erased``, and again when written); those of
a subject merged into another are written on the subject it was merged into.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.db import IntegrityError, router, transaction
from django.utils import timezone

from personalize.conf import personalize_settings
from personalize.experiments.assignment import remember_assignment
from personalize.models import Assignment, Exposure, Subject, Variant
from personalize.outcomes.buffer import ExposureBuffer
from personalize.serving.served import Served

logger = logging.getLogger(__name__)

#: ``source`` values (``Exposure.Source``).
TAG, API = Exposure.Source.TAG.value, Exposure.Source.API.value
#: Merge chains followed when writing (a merged subject's merged subject ...).
MAX_MERGE_DEPTH = 8


class PendingExposure(NamedTuple):
    """An exposure waiting in the buffer: the fields of its row."""

    id: uuid.UUID
    subject_id: int
    placement: str
    strategy: str
    model_version: int | None
    experiment_id: int | None
    variant_id: int | None
    items: tuple[int, ...]
    source: str
    created_at: datetime


def log_exposure(
    served: Served, source: str, *, at: datetime | None = None
) -> uuid.UUID | None:
    """Log that ``served`` was rendered to its subject; its impression id, or ``None``.

    Args:
        served: the block as served (:func:`personalize.serving.service.serve_block`).
        source: ``"tag"`` or ``"api"``.
        at: when the block was shown (default now). For replays and imports of
            past traffic only: the rollup counts the exposure on that day, and
            clicks and conversions are attributed from that time. A page
            rendering a block now never passes it.

    Returns:
        The impression id, or ``None`` when the block is not an exposure (see
        the module docstring). Never raises for a database or cache problem.
    """
    subject_id = served.subject_id
    if not served.exposable or subject_id is None or not personalize_settings.EXPOSURE_LOGGING:
        return None
    try:
        impression = uuid.uuid4()
        if (served.experiment_id is not None and served.variant_id is not None
                and not served.assignment_recorded):
            remember_assignment(served.experiment_id, subject_id, served.variant_id)
        exposures.add(PendingExposure(
            impression, subject_id, served.placement, served.strategy, served.model_version,
            served.experiment_id, served.variant_id, tuple(row.pk for row in served.rows),
            source, at if at is not None else timezone.now(),
        ))
    except Exception:  # a page never fails for its exposure
        logger.exception("Could not log the exposure of placement %r", served.placement)
        return None
    return impression


def _surviving(subject_ids: Iterable[int], alias: str) -> dict[int, int]:
    """Each subject that still exists -> the subject its rows belong to (merges followed)."""
    wanted = set(subject_ids)
    merged_into: dict[int, int | None] = {}  # every subject read: pk -> merged into
    todo = set(wanted)
    for _ in range(MAX_MERGE_DEPTH):
        if not todo:
            break
        read = dict(Subject.objects.using(alias).filter(pk__in=todo)
                    .values_list("pk", "merged_into_id"))
        merged_into.update(read)
        todo = {into for into in read.values() if into is not None} - merged_into.keys()
    surviving: dict[int, int] = {}
    for pk in wanted:
        current: int | None = pk
        for _ in range(MAX_MERGE_DEPTH):
            if current not in merged_into or merged_into[current] is None:
                break
            current = merged_into[current]
        # erased (never read, or a merge target erased since): its rows go too
        if current in merged_into and merged_into[current] is None:
            surviving[pk] = current
    return surviving


def write_exposures(rows: Sequence[PendingExposure]) -> None:
    """Write a batch of exposures and the assignments they record, in one transaction.

    Rows of subjects that no longer exist are dropped; a variant deleted
    meanwhile leaves the exposure without experiment and variant. Written
    with ``ignore_conflicts``: a batch written again (its first commit was
    not acknowledged) stores nothing twice, and an assignment already
    recorded is kept.

    Raises:
        DatabaseError: when the database refuses (the buffer keeps the rows).
    """
    alias = router.db_for_write(Exposure)
    subjects = _surviving({row.subject_id for row in rows}, alias)
    variant_ids = {row.variant_id for row in rows if row.variant_id is not None}
    variants = dict(Variant.objects.using(alias).filter(pk__in=variant_ids)
                    .values_list("pk", "experiment_id")) if variant_ids else {}
    exposures: list[Exposure] = []
    assignments: dict[tuple[int, int], Assignment] = {}
    for row in rows:
        subject = subjects.get(row.subject_id)
        if subject is None:
            continue  # erased since it was logged
        experiment, variant = row.experiment_id, row.variant_id
        if variant is None or variants.get(variant) != experiment:
            experiment = variant = None
        exposures.append(Exposure(
            id=row.id, subject_id=subject, placement=row.placement, strategy=row.strategy,
            model_version=row.model_version, experiment_id=experiment, variant_id=variant,
            items=list(row.items), source=row.source, created_at=row.created_at,
        ))
        if experiment is not None and variant is not None:
            assignments.setdefault((experiment, subject), Assignment(
                experiment_id=experiment, subject_id=subject, variant_id=variant))
    if not exposures:
        return
    with transaction.atomic(using=alias):
        Exposure.objects.using(alias).bulk_create(exposures, ignore_conflicts=True)
        if assignments:
            # one order for every writer, so concurrent batches take locks alike
            ordered = [assignments[key] for key in sorted(assignments)]
            Assignment.objects.using(alias).bulk_create(ordered, ignore_conflicts=True)


def _write(rows: Sequence[PendingExposure]) -> None:
    try:
        write_exposures(rows)
    except IntegrityError:
        # a subject or variant deleted between the check and the insert: once more,
        # checked again (a second failure keeps the rows for the next attempt)
        write_exposures(rows)


#: This process's exposure buffer.
exposures = ExposureBuffer(_write, subject_of=lambda row: row.subject_id)


def flush_exposures() -> bool:
    """Write every buffered exposure now; ``True`` when none is left (tests, shutdown)."""
    return exposures.flush()


def worker_exit(server: Any = None, worker: Any = None) -> None:
    """A gunicorn ``worker_exit`` server hook: write the buffered exposures.

    ``atexit`` already does this when a worker exits normally; the hook makes
    it explicit in a ``gunicorn.conf.py``::

        from personalize.outcomes.exposures import worker_exit  # noqa: F401
    """
    exposures.close()
