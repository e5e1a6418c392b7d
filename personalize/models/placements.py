"""Named slots on pages where a recommendation block appears."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class Placement(models.Model):
    """A named slot such as ``home`` or ``product-detail``, configured by staff.

    ``filters`` holds the business rules for the slot, for example
    ``{"exclude_event_types": ["purchase"], "exclude_window_days": 90,
    "available_only": true, "include_categories": [], "exclude_categories": [],
    "pinned": [], "blocked": [], "exclude_current_item": true}``
    (see docs/serving.md for each key).
    """

    name = models.SlugField(_("name"), max_length=64, unique=True)
    heading = models.CharField(_("heading"), max_length=200, default=_("Recommended for You"))
    strategy = models.CharField(
        _("strategy"), max_length=64, blank=True,
        help_text=_("A configured strategy name; empty uses PERSONALIZE['DEFAULT_STRATEGY']."),
    )
    limit = models.PositiveSmallIntegerField(
        _("limit"), default=8, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    diversity = models.FloatField(
        _("diversity (MMR lambda)"), default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("0 keeps the strategy's order; 1 maximises variety."),
    )
    fallback = models.CharField(
        _("fallback strategy"), max_length=64, blank=True,
        help_text=_("Fills the block when the strategy cannot; empty uses FALLBACK_STRATEGY."),
    )
    cache_ttl = models.PositiveIntegerField(_("cache TTL (seconds)"), default=300)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("placement")
        verbose_name_plural = _("placements")
        ordering = ["name"]
        permissions = [
            ("view_any_recommendations", _("Can view any subject's recommendations")),
        ]

    def __str__(self) -> str:
        return self.name
