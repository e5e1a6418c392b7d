"""An experiment's report from the database: its timeline read, then the pure analysis.

The counting is here, the statistics in :mod:`personalize.experiments.analysis`.
The counts come from the experiment's ``SubjectOutcome`` rows: one per subject
exposed, in the variant it was assigned at its first exposure (the
intention-to-treat unit), read in one aggregate query grouped by the day of
that first exposure and the variant.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from django.db.models import Count, F, FloatField, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from personalize.experiments.analysis import analyse
from personalize.experiments.report import (
    CLICKED,
    CONVERTED,
    FIELDS,
    REVENUE_SUM,
    SUBJECTS,
    Arm,
    Design,
    Report,
    Timeline,
)
from personalize.models import AllocationSnapshot, Experiment, SubjectOutcome, Variant


def design_for(experiment: Experiment) -> Design:
    """The analysis design an experiment's settings describe."""
    return Design(
        metric=experiment.primary_metric,
        mde=experiment.minimum_detectable_effect,
        alpha=experiment.alpha,
        power=experiment.power,
        bandit=experiment.allocation == Experiment.Allocation.THOMPSON,
        running=experiment.status == Experiment.Status.RUNNING,
    )


def arms_for(experiment: Experiment, variants: list[Variant]) -> list[Arm]:
    """The variants as the analysis sees them, with their current planned shares.

    ``Variant.weight`` under a fixed allocation; under Thompson sampling the
    latest allocation snapshot's shares (a variant it does not name gets 0),
    equal shares before the first one.
    """
    weights = {v.key: v.weight for v in variants}
    if experiment.allocation == Experiment.Allocation.THOMPSON:
        latest = (AllocationSnapshot.objects.filter(experiment=experiment)
                  .order_by("-at", "-pk").first())
        shares = latest.weights if latest is not None else None
        weights = ({v.key: float(shares.get(v.key, 0.0)) for v in variants}
                   if isinstance(shares, dict) else dict.fromkeys(weights, 1.0))
    return [Arm(v.key, v.is_control, weights[v.key]) for v in variants]


def experiment_timeline(experiment: Experiment, *, today: date | None = None) -> Timeline:
    """Per day of first exposure and variant: subjects, who clicked, who converted, revenue.

    Days in the current time zone, from the first exposure's day to today
    (a running experiment: today is not over) or to the last day with a first
    exposure (a stopped one); days without any count 0.
    """
    variants = list(Variant.objects.filter(experiment=experiment).order_by("pk"))
    rows = list(
        SubjectOutcome.objects.filter(experiment=experiment)
        .annotate(day=TruncDate("first_exposed_at"))
        .values("day", "variant").order_by()
        .annotate(
            subjects=Count("pk"),
            clicked=Count("pk", filter=Q(clicks__gt=0)),
            converted=Count("pk", filter=Q(conversions__gt=0)),
            revenue_sum=Sum("revenue"),
            revenue_squares=Sum(F("revenue") * F("revenue"), output_field=FloatField()),
        )
    )
    running = experiment.status == Experiment.Status.RUNNING
    today = today or timezone.localdate()
    days = [row["day"] for row in rows]
    first = min(days, default=None)
    last = today if running else max(days, default=None)
    if first is None or last is None or last < first:
        counts = np.zeros((0, len(variants), len(FIELDS)))
        first = None
    else:
        counts = np.zeros(((last - first).days + 1, len(variants), len(FIELDS)))
        column = {v.pk: n for n, v in enumerate(variants)}
        for row in rows:
            if row["day"] <= last and row["variant"] in column:
                counts[(row["day"] - first).days, column[row["variant"]]] = [
                    row["subjects"], row["clicked"], row["converted"],
                    row["revenue_sum"] or 0.0, row["revenue_squares"] or 0.0,
                ]
    return Timeline(tuple(arms_for(experiment, variants)), counts, first_day=first,
                    last_day_partial=running and first is not None)


def allocation_history(experiment: Experiment) -> list[tuple[datetime, dict[str, float]]]:
    """The bandit's allocation snapshots, oldest first: when each began, and its weights.

    A snapshot whose weights are not a mapping (hand-edited) is skipped.
    """
    snapshots = AllocationSnapshot.objects.filter(experiment=experiment).order_by("at", "pk")
    return [(at, {str(k): float(v) for k, v in weights.items()})
            for at, weights in snapshots.values_list("at", "weights")
            if isinstance(weights, dict)]


def experiment_report(experiment: Experiment, *, today: date | None = None) -> Report:
    """The report of an experiment, read from its subjects' outcomes.

    Raises:
        ValueError: the experiment has fewer than two variants or not exactly
            one control (a draft still being set up).
    """
    return analyse(design_for(experiment), experiment_timeline(experiment, today=today))


def experiment_payload(experiment: Experiment, *, today: date | None = None) -> dict[str, Any]:
    """The experiment, its report and its daily timeline as plain data (ready for JSON).

    What ``GET /api/personalize/experiments/<id>/results/`` answers and
    ``manage.py personalize_report --experiment ID --format json`` prints:
    ``experiment`` (its settings and variants), ``report``
    (:meth:`Report.as_dict`) and ``timeline``: the days of first exposure and,
    per variant key, the subjects first exposed each day, those of them who
    clicked, who converted, and their revenue.

    Raises:
        ValueError: the experiment cannot be analysed yet (see :func:`experiment_report`).
    """
    variants = list(experiment.variants.order_by("pk"))
    timeline = experiment_timeline(experiment, today=today)  # raises for a draft
    report = analyse(design_for(experiment), timeline)
    first = timeline.first_day
    days = ([(first + timedelta(days=n)).isoformat() for n in range(len(timeline.counts))]
            if first is not None else [])
    columns = {"subjects": SUBJECTS, "clicked": CLICKED, "converted": CONVERTED,
               "revenue": REVENUE_SUM}
    return {
        "experiment": {
            "id": experiment.pk, "name": experiment.name, "placement": experiment.placement,
            "status": experiment.status, "started_at": _iso(experiment.started_at),
            "ended_at": _iso(experiment.ended_at), "primary_metric": experiment.primary_metric,
            "minimum_detectable_effect": experiment.minimum_detectable_effect,
            "alpha": experiment.alpha, "power": experiment.power,
            "allocation": experiment.allocation,
            "allocation_weights": {arm.key: arm.weight for arm in timeline.arms},
            "variants": [{"key": v.key, "kind": v.kind, "strategy": v.strategy,
                          "weight": v.weight, "is_control": v.is_control} for v in variants],
        },
        "report": report.as_dict(),
        "timeline": {
            "days": days,
            "variants": {
                arm.key: {name: [int(v) if name != "revenue" else float(v)
                                 for v in timeline.counts[:, n, column]]
                          for name, column in columns.items()}
                for n, arm in enumerate(timeline.arms)
            },
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


__all__ = ["allocation_history", "arms_for", "design_for", "experiment_payload",
           "experiment_report", "experiment_timeline"]
