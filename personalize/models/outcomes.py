"""What recommendations earn: blocks shown (exposures) and the rollups built from them."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Exposure(models.Model):
    """One recommendation block rendered to a subject: an impression, one row per block.

    Its ``id`` is the impression id that the block's markup and the REST payload
    carry, and that clicks send back. Logged only for subjects with
    ``analytics`` consent; erasing a subject deletes its exposures.
    """

    class Source(models.TextChoices):
        TAG = "tag", _("template tag")
        API = "api", _("REST API")

    id = models.UUIDField(_("impression id"), primary_key=True, default=uuid.uuid4,
                          editable=False)
    subject = models.ForeignKey(
        "personalize.Subject", verbose_name=_("subject"), on_delete=models.CASCADE,
        related_name="exposures",
    )
    placement = models.CharField(_("placement"), max_length=64)
    strategy = models.CharField(_("strategy"), max_length=64, blank=True)
    model_version = models.PositiveIntegerField(_("model version"), null=True, blank=True)
    experiment = models.ForeignKey(
        "personalize.Experiment", verbose_name=_("experiment"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="exposures",
    )
    variant = models.ForeignKey(
        "personalize.Variant", verbose_name=_("variant"), on_delete=models.SET_NULL,
        null=True, blank=True, related_name="exposures",
    )
    items = models.JSONField(_("items"), default=list, help_text=_("Item pks, in block order."))
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("exposure")
        verbose_name_plural = _("exposures")
        indexes = [
            models.Index(fields=["created_at"], name="personalize_expo_time"),
            models.Index(fields=["subject", "created_at"], name="personalize_expo_subj_time"),
            models.Index(fields=["experiment", "created_at"], name="personalize_expo_exp_time"),
        ]

    def __str__(self) -> str:
        return f"{self.placement} {self.id}"


class SubjectOutcome(models.Model):
    """One subject's outcome in one experiment, the unit its statistics count.

    Kept up to date by the rollup task from exposures and attributed events.
    Erasing the subject deletes it (the experiment's counts then leave it out).
    """

    experiment = models.ForeignKey(
        "personalize.Experiment", verbose_name=_("experiment"), on_delete=models.CASCADE,
        related_name="outcomes",
    )
    variant = models.ForeignKey(
        "personalize.Variant", verbose_name=_("variant"), on_delete=models.CASCADE,
        related_name="outcomes",
    )
    subject = models.ForeignKey(
        "personalize.Subject", verbose_name=_("subject"), on_delete=models.CASCADE,
        related_name="experiment_outcomes",
    )
    first_exposed_at = models.DateTimeField(_("first exposed"))
    exposures = models.PositiveIntegerField(_("exposures"), default=0)
    clicks = models.PositiveIntegerField(_("clicks"), default=0)
    add_to_carts = models.PositiveIntegerField(_("add-to-carts"), default=0)
    conversions = models.PositiveIntegerField(_("conversions"), default=0)
    revenue = models.FloatField(_("revenue"), default=0.0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("subject outcome")
        verbose_name_plural = _("subject outcomes")
        constraints = [
            models.UniqueConstraint(fields=["experiment", "subject"],
                                    name="personalize_outcome_once"),
        ]
        indexes = [models.Index(fields=["experiment", "variant"], name="personalize_out_exp_var")]

    def __str__(self) -> str:
        return f"{self.subject_id} in {self.variant}"


class DailyRollup(models.Model):
    """Counts per day x placement x strategy x experiment variant (no subject: counts only)."""

    day = models.DateField(_("day"))
    placement = models.CharField(_("placement"), max_length=64)
    strategy = models.CharField(_("strategy"), max_length=64, blank=True)
    experiment = models.ForeignKey(
        "personalize.Experiment", verbose_name=_("experiment"), on_delete=models.CASCADE,
        null=True, blank=True, related_name="rollups",
    )
    variant = models.CharField(_("variant"), max_length=32, blank=True)
    impressions = models.PositiveIntegerField(_("impressions"), default=0)
    subjects = models.PositiveIntegerField(_("subjects exposed"), default=0)
    clicks = models.PositiveIntegerField(_("clicks"), default=0)
    add_to_carts = models.PositiveIntegerField(_("add-to-carts"), default=0)
    conversions = models.PositiveIntegerField(_("conversions"), default=0)
    revenue = models.FloatField(_("revenue"), default=0.0)
    items_shown = models.PositiveIntegerField(_("distinct items shown"), default=0)
    computed_at = models.DateTimeField(_("computed"), auto_now=True)

    class Meta:
        verbose_name = _("daily rollup")
        verbose_name_plural = _("daily rollups")
        ordering = ["-day", "placement", "strategy", "variant"]
        constraints = [
            # one row per cell; NULL experiments would not collide in a plain unique index
            models.UniqueConstraint(
                fields=["day", "placement", "strategy", "experiment", "variant"],
                condition=models.Q(experiment__isnull=False), name="personalize_rollup_exp_cell",
            ),
            models.UniqueConstraint(
                fields=["day", "placement", "strategy", "variant"],
                condition=models.Q(experiment__isnull=True), name="personalize_rollup_cell",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.placement} {self.strategy} {self.variant}".rstrip()

    # Rates of the day's cell (docs/outcomes.md). Summing ``subjects`` over days
    # counts a subject once per day it was shown a block.

    @property
    def ctr(self) -> float | None:
        """Clicks per impression (``None`` without impressions)."""
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion_rate(self) -> float | None:
        """Attributed purchases per impression (``None`` without impressions)."""
        return self.conversions / self.impressions if self.impressions else None

    @property
    def revenue_per_subject(self) -> float | None:
        """Attributed revenue per subject shown a block (``None`` without subjects)."""
        return self.revenue / self.subjects if self.subjects else None


class RollupRun(models.Model):
    """One finished run of the rollups: the days it rewrote, and whether it caught up.

    The scheduled run starts where the last run that caught up started, less
    how long attribution can still change a block's counts (see
    :func:`personalize.outcomes.rollup.run_rollup`), so the history of runs is
    also the rollups' bookkeeping. Old runs are pruned.
    """

    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), default=timezone.now)
    first_day = models.DateField(_("first day"))
    last_day = models.DateField(_("last day"))
    caught_up = models.BooleanField(
        _("caught up"), default=False,
        help_text=_("Everything shown since the previous run that caught up was rolled up."),
    )
    exposures = models.PositiveIntegerField(_("exposures"), default=0)
    rows = models.PositiveIntegerField(_("daily rows"), default=0)
    outcomes = models.PositiveIntegerField(_("subject outcomes"), default=0)

    class Meta:
        verbose_name = _("rollup run")
        verbose_name_plural = _("rollup runs")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["caught_up", "started_at"],
                                name="personalize_rollrun_mark")]

    def __str__(self) -> str:
        return f"{self.first_day}..{self.last_day} at {self.started_at:%Y-%m-%d %H:%M}"
