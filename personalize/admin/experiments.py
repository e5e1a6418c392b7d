"""Experiments (with their variants inline), and the exposures and rollups they are read from."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from personalize.admin.common import ReadOnlyAdmin, datetime_column
from personalize.experiments import lifecycle
from personalize.experiments.page import results_page
from personalize.models import DailyRollup, Experiment, Exposure, Variant
from personalize.serving.experiment_forms import ExperimentForm, VariantForm, VariantFormSet

STATUS_COLOURS = {"running": "#2e7d32", "stopped": "#616161", "draft": "#ef6c00"}


class VariantInline(admin.TabularInline):
    """The variants; fixed once the experiment has started (the analysis depends on them)."""

    model = Variant
    form = VariantForm
    formset = VariantFormSet
    extra = 0
    min_num = 2

    def _editable(self, obj: Experiment | None) -> bool:
        return obj is None or obj.status == Experiment.Status.DRAFT

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Experiments: drafted here, started and stopped with the actions."""

    form = ExperimentForm
    inlines = [VariantInline]
    list_display = ["name", "placement", "status_badge", "primary_metric", "allocation",
                    "variant_keys", "started", "ended", "results_link"]
    list_filter = ["status", "placement", "primary_metric"]
    search_fields = ["name", "placement", "description"]
    actions = ["start_experiments", "stop_experiments"]
    fieldsets = [
        (None, {"fields": ["name", "description", "placement"]}),
        (_("Analysis"), {"fields": ["primary_metric", "minimum_detectable_effect", "alpha",
                                    "power"]}),
        (_("Traffic"), {"fields": ["allocation", "bandit_floor"]}),
        (_("Status"), {"fields": ["status", "started_at", "ended_at"]}),
    ]
    started = datetime_column("started_at", _("started"))
    ended = datetime_column("ended_at", _("ended"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fixed = ["status", "started_at", "ended_at"]
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            # a started test keeps its design: the report is computed against it
            fixed += ["placement", "primary_metric", "minimum_detectable_effect", "alpha",
                      "power", "allocation", "bandit_floor"]
        return fixed

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("variants")

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Experiment) -> str:
        return format_html('<b style="color:{}">{}</b>', STATUS_COLOURS.get(obj.status, "inherit"),
                           obj.get_status_display())

    @admin.display(description=_("results"))
    def results_link(self, obj: Experiment) -> str:
        url = reverse("admin:personalize_experiment_results", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("results"))

    def get_urls(self) -> list[Any]:
        results = path("<path:object_id>/results/", self.admin_site.admin_view(self.results_view),
                       name="personalize_experiment_results")
        return [results, *super().get_urls()]

    def results_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        """The experiment's report: verdict, plan, estimates, comparisons and charts."""
        experiment = self.get_object(request, unquote(object_id))
        if experiment is None:
            raise Http404(_("No experiment with the id %(id)s.") % {"id": object_id})
        if not self.has_view_permission(request, experiment):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "original": experiment, "page": results_page(experiment),
            "title": _("Results of %(name)s") % {"name": experiment.name},
        }
        return TemplateResponse(request, "admin/personalize/experiment/results.html", context)

    @admin.display(description=_("variants"))
    def variant_keys(self, obj: Experiment) -> str:
        return ", ".join(f"{v.key}{'*' if v.is_control else ''}" for v in obj.variants.all())

    def _change_status(self, request: HttpRequest, queryset: Any, change: Any,
                       done: str) -> None:
        for experiment in queryset:
            try:
                change(experiment)
            except lifecycle.ExperimentError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, done % {"name": experiment.name}, messages.SUCCESS)

    @admin.action(description=_("Start (draft experiments)"))
    def start_experiments(self, request: HttpRequest, queryset: Any) -> None:
        self._change_status(request, queryset, lifecycle.start, str(_("%(name)s started.")))

    @admin.action(description=_("Stop (running experiments)"))
    def stop_experiments(self, request: HttpRequest, queryset: Any) -> None:
        self._change_status(request, queryset, lifecycle.stop, str(_("%(name)s stopped.")))


@admin.register(Exposure)
class ExposureAdmin(ReadOnlyAdmin):
    """Blocks shown to subjects (impressions), one row per rendered block."""

    list_display = ["id", "time", "subject", "placement", "strategy", "model_version",
                    "experiment", "variant", "source", "item_count"]
    list_filter = ["placement", "source", "experiment"]
    search_fields = ["=id", "subject__key", "subject__user__username"]
    list_select_related = ["subject", "experiment", "variant"]
    time = datetime_column("created_at", _("time"))

    @admin.display(description=_("items"))
    def item_count(self, obj: Exposure) -> int:
        return len(obj.items or [])


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdmin):
    """What each placement, strategy and variant earned per day (counts only)."""

    list_display = ["day", "placement", "strategy", "experiment", "variant", "impressions",
                    "subjects", "clicks", "ctr", "add_to_carts", "conversions", "revenue"]
    list_filter = ["placement", "strategy", "experiment"]
    date_hierarchy = "day"

    @admin.display(description=_("CTR"))
    def ctr(self, obj: DailyRollup) -> str:
        return f"{obj.clicks / obj.impressions:.2%}" if obj.impressions else "-"
