"""Placements: the slots on pages, with a preview of what a subject would see."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from personalize.admin.performance import VIEW_ROLLUPS, performance_view
from personalize.api.recommendations import VIEW_ANY_PERMISSION
from personalize.models import Placement
from personalize.serving.forms import PlacementForm, PreviewForm
from personalize.serving.service import preview
from personalize.templatetags.personalize import block_strategy, render_block


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    """Placements: strategy chosen from the installed ones, validated filters, and a preview.

    The form lives in :mod:`personalize.serving.forms`, the preview calls
    :func:`personalize.serving.service.preview`; the performance page (linked
    above the list) is :mod:`personalize.admin.performance`.
    """

    list_display = ["name", "heading", "strategy_display", "limit", "diversity", "cache_ttl",
                    "enabled", "preview_link"]
    list_editable = ["enabled"]
    list_filter = ["enabled"]
    search_fields = ["name", "heading"]
    readonly_fields = ["preview_link"]
    fieldsets = [
        (None, {"fields": ["name", "heading", "enabled", "preview_link"]}),
        (_("What to show"), {"fields": ["strategy", "fallback", "limit", "diversity", "filters"]}),
        (_("Caching"), {"fields": ["cache_ttl"]}),
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> Any:
        kwargs["form"] = PlacementForm
        return super().get_form(request, obj, change=change, **kwargs)

    @admin.display(description=_("strategy"), ordering="strategy")
    def strategy_display(self, obj: Placement) -> str:
        return obj.strategy or str(_("(default)"))

    @admin.display(description=_("preview"))
    def preview_link(self, obj: Placement) -> str:
        if obj is None or obj.pk is None:
            return "-"
        from django.urls import reverse

        url = reverse("admin:personalize_placement_preview", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Preview as subject"))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
                        ) -> Any:
        # the Performance button, for those who may read the daily rollups
        return super().changelist_view(request, {
            **(extra_context or {}), "performance_allowed": request.user.has_perm(VIEW_ROLLUPS)})

    def get_urls(self) -> list[Any]:
        from django.urls import path

        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="personalize_placement_preview",
        )
        performance = path(
            "performance/",
            self.admin_site.admin_view(lambda request: performance_view(self, request)),
            name="personalize_placement_performance",
        )
        return [performance, preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest, object_id: str) -> Any:
        """Show the block, its explanations and each pipeline stage for a chosen subject."""
        from django.core.exceptions import PermissionDenied
        from django.http import Http404
        from django.template.response import TemplateResponse


        placement = self.get_object(request, object_id)
        if placement is None:
            raise Http404
        if not (self.has_view_permission(request, placement)
                and request.user.has_perm(VIEW_ANY_PERMISSION)):
            raise PermissionDenied
        form = PreviewForm(request.GET or None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "original": placement, "form": form,
            "title": _("Preview of %(name)s") % {"name": placement.name},
            "computed": False,
        }
        if form.is_bound and form.is_valid():
            subject = form.cleaned_data["subject"]
            item = form.cleaned_data.get("item") or None
            recs, trace, config = preview(subject, placement.name, form.cleaned_data["limit"],
                                          {"item": item} if item else None)
            context.update(
                computed=True, subject=subject, recommendations=recs, trace=trace, config=config,
                block_html=render_block(recs, placement=config.name, heading=config.heading,
                                   strategy=block_strategy(recs, config.strategy)),
            )
        return TemplateResponse(request, "admin/personalize/placement/preview.html", context)
