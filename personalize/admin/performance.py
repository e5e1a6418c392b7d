"""The placement performance page: the last days per placement and strategy, with sparklines.

A thin caller of :func:`personalize.outcomes.performance.placement_performance`;
this module only chooses the window and formats the figures. Mounted by
:class:`personalize.admin.placements.PlacementAdmin` at
``performance/`` under the placement list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from personalize.outcomes.performance import (
    DEFAULT_DAYS,
    WINDOWS,
    Daily,
    PlacementPerformance,
    Totals,
    placement_performance,
)
from personalize.training.plots import sparkline_svg

#: Reading the daily rows is what the page shows, so their view permission is needed too.
VIEW_ROLLUPS = "personalize.view_dailyrollup"


@dataclass(frozen=True)
class Line:
    """One row of the table: a placement (all its strategies) or one of its strategies."""

    label: str
    is_placement: bool
    totals: Totals
    impressions_plot: SafeString
    ctr_plot: SafeString
    revenue_plot: SafeString
    experiment_url: str = ""
    experiment_name: str = ""

    @property
    def counts(self) -> dict[str, str]:
        """The counts, with thousands separators; revenue to the cent."""
        t = self.totals
        return {"impressions": f"{t.impressions:,}", "subject_days": f"{t.subject_days:,}",
                "clicks": f"{t.clicks:,}", "add_to_carts": f"{t.add_to_carts:,}",
                "conversions": f"{t.conversions:,}", "revenue": f"{t.revenue:,.2f}"}

    @property
    def ctr(self) -> str:
        return _percent(self.totals.ctr)

    @property
    def conversion_rate(self) -> str:
        return _percent(self.totals.conversion_rate)

    @property
    def revenue_per_subject_day(self) -> str:
        value = self.totals.revenue_per_subject_day
        return "-" if value is None else f"{value:,.2f}"

    @property
    def items_shown(self) -> str:
        return (f"{self.totals.items_shown_max:,} / {self.totals.items_shown_mean:,.1f}"
                if self.totals.rows else "-")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def chosen_days(request: HttpRequest) -> int:
    """The ``?days=`` of the request when it is one of :data:`WINDOWS`, else the default."""
    value = request.GET.get("days", "")
    return int(value) if value.isdigit() and int(value) in WINDOWS else DEFAULT_DAYS


def _plot(values: tuple[float, ...], label: str) -> SafeString:
    return mark_safe(sparkline_svg(values, width=120, height=28, label=label))  # noqa: S308 - numbers only


def _line(label: str, totals: Totals, daily: Daily, *, is_placement: bool,
          placement: PlacementPerformance | None = None) -> Line:
    experiment = placement.experiment if placement is not None else None
    return Line(
        label=label, is_placement=is_placement, totals=totals,
        impressions_plot=_plot(daily.impressions, f"impressions per day of {label}"),
        ctr_plot=_plot(daily.ctr, f"CTR per day of {label}"),
        revenue_plot=_plot(daily.revenue, f"revenue per day of {label}"),
        experiment_url=(reverse("admin:personalize_experiment_change", args=[experiment.id])
                        if experiment else ""),
        experiment_name=experiment.name if experiment else "",
    )


def lines(placements: tuple[PlacementPerformance, ...]) -> list[Line]:
    """The table's rows: each placement's totals, then each of its strategies."""
    found = []
    for placement in placements:
        found.append(_line(placement.placement, placement.totals, placement.daily,
                           is_placement=True, placement=placement))
        found += [_line(s.strategy or _("(no strategy)"), s.totals, s.daily, is_placement=False)
                  for s in placement.strategies]
    return found


def performance_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> TemplateResponse:
    """The page: per placement and strategy, the last 7, 30 or 90 days (``?days=``)."""
    if not (model_admin.has_view_permission(request) and request.user.has_perm(VIEW_ROLLUPS)):
        raise PermissionDenied
    days = chosen_days(request)
    performance = placement_performance(days)
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": _("Placement performance"),
        "days": days,
        "windows": sorted(WINDOWS),
        "performance": performance,
        "lines": lines(performance.placements),
    }
    return TemplateResponse(request, "admin/personalize/placement/performance.html", context)
