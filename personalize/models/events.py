"""What people do: the append-only record every strategy trains on."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

#: How many of a subject's latest preference events make up the history that
#: strategies read at serving time (and the data export summarises).
HISTORY_LIMIT = 500


class EventSource(models.TextChoices):
    SERVER = "server", _("server-side track()")
    API = "api", _("REST API")
    BROWSER = "browser", _("JavaScript tracker")
    IMPORT = "import", _("bulk import")


class Event(models.Model):
    """One signal from one subject. The database is the source of truth for events.

    ``event_id`` is supplied by the client (or generated) so a retried send is
    stored once. ``event_type`` is validated against ``PERSONALIZE["EVENT_TYPES"]``
    and ``EXTRA_EVENT_TYPES`` at ingestion rather than by a DB constraint, so a
    site can add types without a migration.
    """

    event_id = models.UUIDField(_("event id"), unique=True, default=uuid.uuid4, editable=False)
    subject = models.ForeignKey(
        "personalize.Subject", verbose_name=_("subject"), on_delete=models.CASCADE,
        related_name="events",
        # Covered by the (subject, -timestamp, -id) index; a second index only slows inserts.
        db_index=False,
    )
    item = models.ForeignKey(
        "personalize.Item", verbose_name=_("item"), null=True, blank=True,
        on_delete=models.CASCADE, related_name="events",
        help_text=_("Empty for page-level events such as a search."),
        # Covered by the (item, event_type) index; a second index only slows inserts.
        db_index=False,
    )
    event_type = models.CharField(_("type"), max_length=32)
    value = models.FloatField(_("value"), null=True, blank=True, help_text=_("Rating or seconds."))
    context = models.JSONField(_("context"), default=dict, blank=True)
    timestamp = models.DateTimeField(_("time"), default=timezone.now)
    source = models.CharField(
        _("source"), max_length=16, choices=EventSource.choices, default=EventSource.SERVER
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-timestamp"]
        indexes = [
            # Serving: a subject's recent history, in the order the query asks for
            # (latest first, ties by id), so that neither SQLite nor PostgreSQL sorts.
            models.Index(fields=["subject", "-timestamp", "-id"], name="personalize_ev_subj_ts_id"),
            # Training: the time window scan; retention: deleting old rows; the
            # "trending" window of popularity (its type filter is not selective:
            # most events are preference types, so (type, timestamp) would only
            # slow every insert, and it lured the planner into scanning all of a
            # type when a subject's history was asked for).
            models.Index(fields=["timestamp"], name="personalize_ev_ts"),
            # Popularity and "popular in category" counts.
            models.Index(fields=["item", "event_type"], name="personalize_ev_item_type"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} by {self.subject_id} on {self.item_id or '-'}"
