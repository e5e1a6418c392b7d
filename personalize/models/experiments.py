"""A/B tests of what a placement serves: experiments, their variants, who sees which."""

from __future__ import annotations

import secrets

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


def new_salt() -> str:
    """A fresh random salt: each experiment splits subjects independently of the others."""
    return secrets.token_hex(8)


class Experiment(models.Model):
    """An A/B test on one placement: subjects are split between its variants.

    Assignment is a deterministic hash of ``salt`` and the subject (see
    :mod:`personalize.experiments.assignment`), recorded at a subject's first
    exposure so it survives the anonymous-to-user merge. Only subjects with
    ``analytics`` consent take part; the others see the control and are not
    analysed.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        RUNNING = "running", _("running")
        STOPPED = "stopped", _("stopped")

    class Metric(models.TextChoices):
        CTR = "ctr", _("click-through rate (subjects who clicked)")
        CONVERSION = "conversion", _("conversion rate (subjects who converted)")
        REVENUE = "revenue", _("revenue per subject")

    class Allocation(models.TextChoices):
        FIXED = "fixed", _("fixed weights")
        THOMPSON = "thompson", _("Thompson sampling (bandit)")

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    placement = models.SlugField(
        _("placement"), max_length=64,
        help_text=_("The placement whose blocks the variants serve."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    primary_metric = models.CharField(
        _("primary metric"), max_length=16, choices=Metric.choices, default=Metric.CTR
    )
    minimum_detectable_effect = models.FloatField(
        _("minimum detectable effect"), default=0.1,
        validators=[MinValueValidator(0.001), MaxValueValidator(10.0)],
        help_text=_("Relative lift the test must be able to detect, e.g. 0.1 for +10%."),
    )
    alpha = models.FloatField(
        _("significance level"), default=0.05,
        validators=[MinValueValidator(0.001), MaxValueValidator(0.2)],
    )
    power = models.FloatField(
        _("power"), default=0.8, validators=[MinValueValidator(0.5), MaxValueValidator(0.99)]
    )
    allocation = models.CharField(
        _("allocation"), max_length=16, choices=Allocation.choices, default=Allocation.FIXED
    )
    bandit_floor = models.FloatField(
        _("bandit floor"), default=0.05,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text=_("Smallest share of traffic any variant keeps under Thompson sampling."),
    )
    salt = models.CharField(_("salt"), max_length=32, default=new_salt, editable=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("experiment")
        verbose_name_plural = _("experiments")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["placement", "status"], name="personalize_exp_place_st")]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One arm of an experiment: what its subjects see in the placement.

    ``kind`` says what the variant serves: a strategy (``strategy``), a
    placement configuration (``config``: any of ``strategy``, ``fallback``,
    ``diversity``, ``limit``, ``filters`` overriding the placement's), the
    popularity baseline, or no recommendations at all (a holdout).
    """

    class Kind(models.TextChoices):
        STRATEGY = "strategy", _("a strategy")
        CONFIG = "config", _("a placement configuration")
        POPULAR = "popular", _("the popularity baseline")
        HOLDOUT = "holdout", _("no recommendations (holdout)")

    experiment = models.ForeignKey(
        Experiment, verbose_name=_("experiment"), on_delete=models.CASCADE,
        related_name="variants",
    )
    key = models.SlugField(_("key"), max_length=32, help_text=_("Short name, e.g. 'a' or 'ease'."))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.STRATEGY)
    strategy = models.CharField(_("strategy"), max_length=64, blank=True)
    config = models.JSONField(_("placement configuration"), default=dict, blank=True)
    weight = models.FloatField(
        _("traffic weight"), default=1.0, validators=[MinValueValidator(0.0)],
        help_text=_("Relative share of subjects (fixed allocation)."),
    )
    is_control = models.BooleanField(_("control"), default=False)

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["experiment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="personalize_variant_key"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name}: {self.key}"


class Assignment(models.Model):
    """The variant a subject was assigned, recorded at its first exposure (sticky)."""

    experiment = models.ForeignKey(
        Experiment, verbose_name=_("experiment"), on_delete=models.CASCADE,
        related_name="assignments",
    )
    subject = models.ForeignKey(
        "personalize.Subject", verbose_name=_("subject"), on_delete=models.CASCADE,
        related_name="assignments",
    )
    variant = models.ForeignKey(
        Variant, verbose_name=_("variant"), on_delete=models.CASCADE, related_name="assignments"
    )
    assigned_at = models.DateTimeField(_("assigned"), auto_now_add=True)

    class Meta:
        verbose_name = _("assignment")
        verbose_name_plural = _("assignments")
        constraints = [
            models.UniqueConstraint(fields=["experiment", "subject"],
                                    name="personalize_assignment_once"),
        ]

    def __str__(self) -> str:
        return f"{self.subject_id} -> {self.variant}"


class AllocationSnapshot(models.Model):
    """The traffic weights a bandit experiment used from ``at`` on (its allocation history)."""

    experiment = models.ForeignKey(
        Experiment, verbose_name=_("experiment"), on_delete=models.CASCADE,
        related_name="allocations",
    )
    at = models.DateTimeField(_("from"), auto_now_add=True, db_index=True)
    weights = models.JSONField(_("weights"), help_text=_("Variant key -> share of traffic."))

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        ordering = ["experiment", "-at"]

    def __str__(self) -> str:
        return f"{self.experiment_id} from {self.at:%Y-%m-%d %H:%M}"
