"""The consent ledger: every grant and withdrawal, never edited."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class ConsentSource(models.TextChoices):
    BANNER = "banner", _("consent banner")
    API = "api", _("REST API")
    SERVER = "server", _("server-side call")
    SIGNAL = "signal", _("browser signal (GPC / DNT)")
    ADMIN = "admin", _("admin")


class ConsentRecord(models.Model):
    """One entry in the append-only consent ledger.

    The current state of a purpose is the latest record for it; rows are never
    updated, so the ledger shows who agreed to what, under which policy, when.
    """

    subject = models.ForeignKey(
        "personalize.Subject", verbose_name=_("subject"), on_delete=models.CASCADE,
        related_name="consent_records",
    )
    purpose = models.CharField(_("purpose"), max_length=32)
    granted = models.BooleanField(_("granted"))
    policy_version = models.CharField(_("policy version"), max_length=32)
    source = models.CharField(_("source"), max_length=16, choices=ConsentSource.choices)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent ledger")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["subject", "purpose", "-created_at"], name="personalize_consent_latest"
            )
        ]

    def __str__(self) -> str:
        verb = "granted" if self.granted else "withdrew"
        return f"{self.subject_id} {verb} {self.purpose} (policy {self.policy_version})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Consent records are append-only; record a new grant or withdrawal.")
        super().save(*args, **kwargs)
