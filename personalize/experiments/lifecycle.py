"""Starting and stopping experiments: the rules that keep their analysis sound.

An experiment runs on one placement at a time, and its variants and weights
are fixed once it has started (changing them mid-test would mix two designs in
one analysis; a bandit changes only its own allocation).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from personalize.models import Experiment

Status = Experiment.Status


class ExperimentError(ValueError):
    """An experiment cannot move to the asked status; the message says why."""


def running_on(placement: str, exclude: int | None = None) -> Experiment | None:
    """The experiment running on ``placement`` (other than ``exclude``), if any."""
    running = Experiment.objects.filter(placement=placement, status=Status.RUNNING)
    if exclude is not None:
        running = running.exclude(pk=exclude)
    return running.first()


def start(experiment: Experiment) -> Experiment:
    """Start a draft experiment now.

    Raises:
        ExperimentError: it is not a draft, has fewer than two variants or no
            single control, or another experiment runs on its placement.
    """
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status != Status.DRAFT:
            raise ExperimentError(
                f"{experiment.name!r} is {experiment.get_status_display()}; only a draft can "
                "start (copy it to run it again).")
        variants = list(experiment.variants.all())
        if len(variants) < 2:
            raise ExperimentError(f"{experiment.name!r} needs at least two variants to start.")
        if sum(v.is_control for v in variants) != 1:
            raise ExperimentError(f"{experiment.name!r} needs exactly one control variant.")
        other = running_on(experiment.placement, exclude=experiment.pk)
        if other is not None:
            raise ExperimentError(
                f"{other.name!r} already runs on the placement {experiment.placement!r}; "
                "stop it first.")
        experiment.status = Status.RUNNING
        experiment.started_at = timezone.now()
        experiment.save(update_fields=["status", "started_at", "updated_at"])
    return experiment


def stop(experiment: Experiment) -> Experiment:
    """Stop a running experiment now (its subjects see the placement as configured again).

    Raises:
        ExperimentError: it is not running.
    """
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.status != Status.RUNNING:
            raise ExperimentError(f"{experiment.name!r} is not running.")
        experiment.status = Status.STOPPED
        experiment.ended_at = timezone.now()
        experiment.save(update_fields=["status", "ended_at", "updated_at"])
    return experiment
