"""SubjectOutcome rows: each exposed subject's outcome in an experiment, the unit it counts.

A subject counts in the variant it was assigned at its first exposure
(its :class:`~personalize.models.Assignment`; intention-to-treat), whatever it
was shown later. Per subject and experiment:

* ``exposures``: the experiment's blocks it was shown;
* ``clicks``: clicks counted for those blocks;
* ``add_to_carts``, ``conversions``, ``revenue``: what was attributed to those
  blocks (:mod:`personalize.outcomes.attribution`). In an experiment with a
  holdout variant nothing can be attributed to the holdout's empty blocks, so
  there every add-to-cart and purchase of the subject from its first exposure
  until the experiment ended counts, in every variant alike: the comparison
  is then "with recommendations" against "without".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Count, Min
from django.utils import timezone

from personalize.models import (
    Assignment,
    Event,
    Experiment,
    Exposure,
    Subject,
    SubjectOutcome,
    Variant,
)
from personalize.outcomes.attribution import ADD_TO_CART, PURCHASE, Rules, attribute
from personalize.outcomes.reader import (
    CONVERSION_TYPES,
    db_time,
    groups,
    micros,
    read_activity,
    rules_from_settings,
)

#: Exposures of the subjects whose outcomes are computed together (one read of their
#: activity: it bounds the memory).
EXPOSURES_PER_GROUP = 50_000
#: Subjects computed together at most (the length of one IN list).
SUBJECTS_PER_GROUP = 10_000

#: The statuses whose experiments have outcomes (a draft never assigned anyone).
ANALYSED = (Experiment.Status.RUNNING, Experiment.Status.STOPPED)

_FIELDS = ["variant", "first_exposed_at", "exposures", "clicks", "add_to_carts", "conversions",
           "revenue", "updated_at"]


def counts_every_conversion(experiment: Experiment) -> bool:
    """Whether the experiment measures every conversion, not attributed ones (it has a holdout)."""
    return experiment.variants.filter(kind=Variant.Kind.HOLDOUT).exists()


def subjects_to_update(experiment: Experiment, since: datetime | None) -> list[int]:
    """The subjects whose outcome in ``experiment`` may have changed since ``since``.

    Subjects shown one of its blocks since then, subjects into which another
    subject was merged since then (their exposures moved), and with a holdout
    subjects already in the experiment who added to cart or bought since then.
    ``since=None``: every subject ever exposed.
    """
    exposed = Exposure.objects.filter(experiment=experiment).order_by()
    if since is None:
        return sorted(set(exposed.values_list("subject_id", flat=True).distinct()))
    since = db_time(since)
    found = set(exposed.filter(created_at__gte=since)
                .values_list("subject_id", flat=True).distinct())
    merged_into = (Subject.objects.filter(merged_into__isnull=False, last_seen_at__gte=since)
                   .values("merged_into_id"))
    found.update(exposed.filter(subject_id__in=merged_into)
                 .values_list("subject_id", flat=True).distinct())
    if counts_every_conversion(experiment):
        members = SubjectOutcome.objects.filter(experiment=experiment).values("subject_id")
        found.update(
            Event.objects.filter(timestamp__gte=since, event_type__in=list(CONVERSION_TYPES),
                                 subject_id__in=members)
            .order_by().values_list("subject_id", flat=True).distinct()
        )
    return sorted(found)


def _subject_index(subjects: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Position of each of ``subjects`` in the sorted array ``known`` (all present)."""
    return np.searchsorted(known, subjects)


def compute_outcomes(experiment: Experiment, subject_ids: Sequence[int],
                     rules: Rules, *, every_conversion: bool | None = None) -> list[SubjectOutcome]:
    """The outcomes of ``subject_ids`` in ``experiment``, as unsaved rows.

    Subjects never shown one of the experiment's blocks get no row.
    """
    first_shown = dict(
        Exposure.objects.filter(experiment=experiment, subject_id__in=list(subject_ids))
        .order_by().values("subject_id").annotate(first=Min("created_at"))
        .values_list("subject_id", "first")
    )
    if not first_shown:
        return []
    if every_conversion is None:
        every_conversion = counts_every_conversion(experiment)
    known = np.array(sorted(first_shown), dtype=np.int64)
    start = min(first_shown.values()) - timedelta(microseconds=rules.reach)
    activity = read_activity(known.tolist(), start, None)
    attribution = attribute(activity.exposures, activity.clicks, activity.conversions, rules)

    mine = np.flatnonzero(activity.experiments == experiment.pk)
    who = _subject_index(activity.exposures.subjects[mine], known)
    n = len(known)

    def total(values: np.ndarray, rows: np.ndarray = mine, index: np.ndarray = who) -> np.ndarray:
        return np.bincount(index, weights=values[rows], minlength=n)

    exposures = np.bincount(who, minlength=n)
    clicks = total(attribution.clicks)
    if every_conversion:
        conv = activity.conversions
        owner = _subject_index(conv.subjects, known)
        first_us = np.array([micros(first_shown[s]) for s in known.tolist()], dtype=np.int64)
        end_us = micros(experiment.ended_at) if experiment.ended_at else np.iinfo(np.int64).max
        counted = np.flatnonzero((conv.times >= first_us[owner]) & (conv.times < end_us))
        carts = np.bincount(owner[counted[conv.kinds[counted] == ADD_TO_CART]], minlength=n)
        purchases = counted[conv.kinds[counted] == PURCHASE]
        conversions = np.bincount(owner[purchases], minlength=n)
        revenue = np.bincount(owner[purchases], weights=conv.values[purchases], minlength=n)
    else:
        carts = total(attribution.add_to_carts)
        conversions = total(attribution.conversions)
        revenue = total(attribution.revenue)

    # the variant of the first exposure (rows come in time order) stands in for a
    # missing Assignment row
    seen, first_row = np.unique(who, return_index=True)
    shown_variant = dict(zip(known[seen].tolist(),
                             activity.variants[mine[first_row]].tolist(), strict=True))
    assigned = dict(Assignment.objects.filter(experiment=experiment, subject_id__in=known.tolist())
                    .values_list("subject_id", "variant_id"))
    now = timezone.now()
    rows = []
    for i, subject in enumerate(known.tolist()):
        variant = assigned.get(subject, shown_variant.get(subject, -1))
        if variant is None or variant < 0:
            continue  # its variant was deleted: it cannot be placed
        rows.append(SubjectOutcome(
            experiment=experiment, variant_id=variant, subject_id=subject,
            first_exposed_at=first_shown[subject], exposures=int(exposures[i]),
            clicks=round(clicks[i]), add_to_carts=round(carts[i]),
            conversions=round(conversions[i]), revenue=round(float(revenue[i]), 6),
            updated_at=now,
        ))
    return rows


def save_outcomes(experiment: Experiment, subject_ids: Sequence[int],
                  rows: list[SubjectOutcome]) -> int:
    """Upsert ``rows``; the group's subjects without a row lose theirs. Returns rows written."""
    kept = {row.subject_id for row in rows}
    gone = [s for s in subject_ids if s not in kept]
    if gone:
        SubjectOutcome.objects.filter(experiment=experiment, subject_id__in=gone).delete()
    SubjectOutcome.objects.bulk_create(
        rows, batch_size=500, update_conflicts=True, unique_fields=["experiment", "subject"],
        update_fields=_FIELDS,
    )
    return len(rows)


def update_outcomes(since: datetime | None, *,
                    progress: Callable[[str, int, int], None] | None = None) -> int:
    """Recompute the outcomes that may have changed since ``since`` (``None``: all of them).

    Covers running and stopped experiments. Returns how many rows were written.
    """
    rules = rules_from_settings()
    plan = [
        (experiment, subjects_to_update(experiment, since))
        for experiment in Experiment.objects.filter(status__in=ANALYSED).order_by("pk")
    ]
    total = sum(len(subjects) for _, subjects in plan)
    done = written = 0
    for experiment, subjects in plan:
        if not subjects:  # a stopped experiment past its reach: nothing changes
            continue
        every_conversion = counts_every_conversion(experiment)
        shown = dict(Exposure.objects.filter(experiment=experiment).values("subject_id")
                     .annotate(n=Count("id")).order_by().values_list("subject_id", "n"))
        sized = ((subject, shown.get(subject, 1)) for subject in subjects)
        for group in groups(sized, EXPOSURES_PER_GROUP, SUBJECTS_PER_GROUP):
            rows = compute_outcomes(experiment, group, rules, every_conversion=every_conversion)
            written += save_outcomes(experiment, group, rows)
            done += len(group)
            if progress is not None:
                progress("experiment outcomes", done, total)
    return written
