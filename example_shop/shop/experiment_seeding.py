"""The demo's experiment on its home placement: EASE against the popularity baseline.

:func:`ensure_experiment` creates the experiment if no experiment of that name
exists and starts it through :func:`personalize.experiments.lifecycle.start`,
the same rules the admin's "start" action applies. An existing experiment is
left as it is (edited, stopped or running), so a second run changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from personalize.experiments.lifecycle import ExperimentError, start
from personalize.models import Experiment, Variant

EXPERIMENT_NAME = "Home: EASE vs popular"
PLACEMENT = "home"
#: The variants: the control serves the popularity baseline, the treatment EASE.
CONTROL_KEY, TREATMENT_KEY, TREATMENT_STRATEGY = "popular", "ease", "ease"
#: Primary metric and the smallest relative lift it is sized for (docs/demo.md
#: says why: the replay's few thousand shoppers plan a reachable sample for it).
PRIMARY_METRIC = Experiment.Metric.CONVERSION
MINIMUM_DETECTABLE_EFFECT = 1.0
#: A fixed salt: with the seeded subjects' stable keys, every fresh demo splits alike.
SALT = "demo-home-ease-vs-popular"


@dataclass(frozen=True)
class ExperimentSeed:
    """What :func:`ensure_experiment` did."""

    experiment: Experiment
    created: bool
    started: bool

    def __str__(self) -> str:
        if self.created:
            return f"Experiment {self.experiment.name!r} created and started on {PLACEMENT!r}."
        return (f"Experiment {self.experiment.name!r} already exists "
                f"({self.experiment.get_status_display()}): left as it is.")


def ensure_experiment() -> ExperimentSeed:
    """Create and start the home experiment unless one of that name exists.

    Raises:
        ExperimentError: another experiment runs on the home placement (stop
            it in the admin first), or the ``home`` placement is missing.
    """
    from personalize.models import Placement

    existing = Experiment.objects.filter(name=EXPERIMENT_NAME).first()
    if existing is not None:
        return ExperimentSeed(existing, created=False, started=False)
    if not Placement.objects.filter(name=PLACEMENT).exists():
        raise ExperimentError(f"No placement {PLACEMENT!r}: seed the shop first.")
    with transaction.atomic():
        experiment = Experiment.objects.create(
            name=EXPERIMENT_NAME, placement=PLACEMENT,
            description=("The demo's A/B test: personalized EASE recommendations against "
                         "the best sellers, 50/50 (seed_shop creates it)."),
            primary_metric=PRIMARY_METRIC, minimum_detectable_effect=MINIMUM_DETECTABLE_EFFECT,
            salt=SALT,
        )
        Variant.objects.create(experiment=experiment, key=CONTROL_KEY,
                               kind=Variant.Kind.POPULAR, weight=1.0, is_control=True)
        Variant.objects.create(experiment=experiment, key=TREATMENT_KEY,
                               kind=Variant.Kind.STRATEGY, strategy=TREATMENT_STRATEGY,
                               weight=1.0)
        experiment = start(experiment)
    return ExperimentSeed(experiment, created=True, started=True)
