"""Trained model versions and their lifecycle."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ModelStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    TRAINING = "training", _("training")
    READY = "ready", _("ready (not active)")
    ACTIVE = "active", _("active")
    REJECTED = "rejected", _("rejected by the quality gate")
    FAILED = "failed", _("failed")
    RETIRED = "retired", _("retired")


class ModelVersion(models.Model):
    """One training run of one strategy: what went in, what came out, and whether it serves."""

    strategy = models.CharField(_("strategy"), max_length=64, db_index=True)
    version = models.PositiveIntegerField(_("version"))
    status = models.CharField(
        _("status"), max_length=16, choices=ModelStatus.choices, default=ModelStatus.PENDING,
        db_index=True,
    )
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    data_start = models.DateTimeField(_("data from"), null=True, blank=True)
    data_end = models.DateTimeField(_("data until"), null=True, blank=True)
    n_subjects = models.PositiveIntegerField(_("subjects"), default=0)
    n_items = models.PositiveIntegerField(_("items"), default=0)
    n_events = models.PositiveBigIntegerField(_("events"), default=0)
    artifact = models.CharField(_("artifact path"), max_length=500, blank=True)
    artifact_size = models.PositiveBigIntegerField(_("artifact bytes"), default=0)
    fit_seconds = models.FloatField(_("fit seconds"), null=True, blank=True)
    total_seconds = models.FloatField(_("total seconds"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True, help_text=_("Why it was or was not activated."))
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)

    class Meta:
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        ordering = ["strategy", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "version"], name="personalize_modelversion_unique"
            ),
            # At most one live version per strategy: activation swaps atomically.
            models.UniqueConstraint(
                fields=["strategy"], condition=models.Q(status="active"),
                name="personalize_modelversion_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} v{self.version} ({self.status})"
