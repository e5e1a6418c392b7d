"""Bandit allocation: after each rollup, Thompson sampling moves a bandit's traffic weights.

For every running experiment with ``allocation = "thompson"``, the subjects
exposed per variant (trials) and those who succeeded on the primary rate
metric (successes: at least one click for CTR; at least one conversion for the
conversion rate, and for revenue per subject, whose bandit uses the conversion
rate) go to :func:`personalize.experiments.bandit.thompson_weights`, with the
experiment's ``bandit_floor``. The new weights are stored as an
:class:`~personalize.models.AllocationSnapshot` (the allocation history;
assignment reads the latest). Nothing is stored before any subject was
exposed, or when the weights did not change.
"""

from __future__ import annotations

import numpy as np
from django.db.models import Count, Q

from personalize.experiments.bandit import thompson_weights
from personalize.models import AllocationSnapshot, Experiment, SubjectOutcome, Variant


def arm_counts(experiment: Experiment,
               variants: list[Variant]) -> tuple[list[int], list[int]]:
    """``(successes, trials)`` per variant, in the order of ``variants``."""
    metric = "clicks" if experiment.primary_metric == Experiment.Metric.CTR else "conversions"
    stats = {
        row["variant_id"]: (row["successes"], row["trials"])
        for row in SubjectOutcome.objects.filter(experiment=experiment).order_by()
        .values("variant_id").annotate(
            trials=Count("id"), successes=Count("id", filter=Q(**{f"{metric}__gt": 0})))
    }
    pairs = [stats.get(variant.pk, (0, 0)) for variant in variants]
    return [s for s, _ in pairs], [t for _, t in pairs]


def update_allocation(experiment: Experiment) -> AllocationSnapshot | None:
    """Store the bandit's new weights; ``None`` when there is nothing new to store."""
    variants = list(experiment.variants.order_by("id"))
    if not variants:
        return None
    successes, trials = arm_counts(experiment, variants)
    if not sum(trials):
        return None  # before any data every arm keeps its equal share
    # seeded by the data: the same counts give the same weights, in any process
    rng = np.random.default_rng([experiment.pk, sum(trials), sum(successes)])
    weights = thompson_weights(successes, trials, experiment.bandit_floor, rng)
    shares = {variant.key: round(float(weight), 6)
              for variant, weight in zip(variants, weights, strict=True)}
    latest = experiment.allocations.order_by("-at", "-id").first()
    if latest is not None and latest.weights == shares:
        return None
    return AllocationSnapshot.objects.create(experiment=experiment, weights=shares)


def update_allocations() -> int:
    """Update every running Thompson-sampling experiment; returns the snapshots stored."""
    running = Experiment.objects.filter(
        status=Experiment.Status.RUNNING, allocation=Experiment.Allocation.THOMPSON,
    ).order_by("pk")
    return sum(update_allocation(experiment) is not None for experiment in running)
