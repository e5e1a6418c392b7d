"""Who is being personalized: a signed-in user or an anonymous visitor."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def new_visitor_id() -> str:
    """An opaque random visitor id (128 bits), the value of the visitor cookie."""
    return secrets.token_urlsafe(16)


def new_subject_key() -> str:
    """The pseudonymous key events and artifacts reference instead of personal data."""
    return secrets.token_hex(16)


class Subject(models.Model):
    """A person as the SDK sees them.

    ``key`` is a random pseudonym: it is what trained artifacts, caches and
    exports reference, so erasing the row is enough to forget the person. It
    never holds an e-mail address, a user name or an IP address.
    """

    key = models.CharField(
        _("pseudonymous key"), max_length=32, unique=True, default=new_subject_key, editable=False
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="personalize_subject",
    )
    visitor_id = models.CharField(
        _("visitor id"), max_length=64, null=True, blank=True, unique=True,
        help_text=_("Opaque id from the first-party visitor cookie, for anonymous visitors."),
    )
    merged_into = models.ForeignKey(
        "self", verbose_name=_("merged into"), null=True, blank=True,
        on_delete=models.CASCADE, related_name="merged_from",
        help_text=_("Set when an anonymous visitor signed in and their history moved."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), auto_now=True)

    class Meta:
        verbose_name = _("subject")
        verbose_name_plural = _("subjects")
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.key[:8]}"

    @property
    def kind(self) -> str:
        return "user" if self.user_id else "visitor"

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None
