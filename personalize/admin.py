"""Admin screens: catalog and placements are editable; history is read-only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from personalize.api.recommendations import VIEW_ANY_PERMISSION
from personalize.consent.rights import erase_subjects
from personalize.models import ConsentRecord, Event, Item, ModelVersion, Placement, Subject
from personalize.serving.forms import PlacementForm, PreviewForm
from personalize.serving.service import preview
from personalize.templatetags.personalize import block_strategy, render_block
from personalize.training import service
from personalize.training.plots import sparkline_svg
from personalize.training.tasks import train_strategy

#: How the lists show a moment: the date and the time to the second, in the
#: current time zone (events of one visit fall within a minute).
LIST_DATETIME_FORMAT = "Y-m-d H:i:s"


def datetime_column(field: str, label: Any) -> Callable[[Any, Any], str]:
    """A sortable ``list_display`` column showing a date-time field as a date and time."""
    @admin.display(description=label, ordering=field)
    def column(self: Any, obj: Any) -> str:
        value = getattr(obj, field)
        if value is None:
            return "-"
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return date_format(value, LIST_DATETIME_FORMAT)

    return column


class ReadOnlyAdmin(admin.ModelAdmin):
    """For history that editing would corrupt: view and search, never add or change."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    """Subjects: read-only, and deleting one is an erasure (``erase_subject``).

    Both the delete view and the "delete selected" action call
    :func:`personalize.consent.rights.erase_subjects`, so the subject's cached
    blocks and consent state leave the cache, loaded models forget it
    (``subject_erased``) and the subjects merged into it go with it.
    """

    list_display = ["key", "kind", "user", "created", "last_seen", "event_count"]
    list_filter = [("user", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["key", "visitor_id", "user__username"]
    readonly_fields = ["key", "user", "visitor_id", "merged_into", "created_at", "last_seen_at"]
    list_select_related = ["user"]
    show_full_result_count = False

    created = datetime_column("created_at", _("created"))
    last_seen = datetime_column("last_seen_at", _("last seen"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("events"))
    def event_count(self, obj: Subject) -> int:
        return obj.events.count()

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        delete = actions.get("delete_selected")  # Django's action, which calls delete_queryset
        if delete is not None:
            function, name, _description = delete
            actions[name] = (function, name,
                             str(_("Erase selected subjects (events, consent and cached data)")))
        return actions

    def delete_model(self, request: HttpRequest, obj: Subject) -> None:
        self._erase(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        self._erase(request, queryset)

    def _erase(self, request: HttpRequest, subjects: Any) -> None:
        from django.contrib import messages
        from django.utils.translation import ngettext

        reports = erase_subjects(subjects)
        if len(reports) == 1:
            self.message_user(request, str(reports[0]), messages.INFO)
        elif reports:
            count = sum(len(report.subject_ids) for report in reports)
            rows = sum(report.rows for report in reports)
            keys = sum(report.cache_keys for report in reports)
            self.message_user(request, ngettext(
                "Erased %(count)d subject: %(rows)d rows, %(keys)d cache keys.",
                "Erased %(count)d subjects: %(rows)d rows, %(keys)d cache keys.", count,
            ) % {"count": count, "rows": rows, "keys": keys}, messages.INFO)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "primary_category", "available", "updated"]
    list_filter = ["available", "content_type"]
    search_fields = ["external_id", "title", "primary_category"]
    readonly_fields = ["content_type", "object_id", "content_hash", "primary_category",
                       "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["external_id", "title", "available"]}),
        (_("Content"), {"fields": ["text", "categories", "primary_category", "attributes"]}),
        (_("Host object"), {"fields": ["content_type", "object_id"]}),
        (_("Bookkeeping"), {"fields": ["content_hash", "created_at", "updated_at"]}),
    ]
    show_full_result_count = False

    updated = datetime_column("updated_at", _("updated"))


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["time", "event_type", "subject", "username", "item", "value", "source"]
    list_filter = ["event_type", "source", ("timestamp", admin.DateFieldListFilter)]
    # a shop owner looks a shopper up by user name, support staff by pseudonymous key
    search_fields = ["subject__user__username", "subject__key", "item__external_id",
                     "item__title", "=event_id"]
    list_select_related = ["subject__user", "item"]
    date_hierarchy = "timestamp"
    show_full_result_count = False  # COUNT(*) over millions of events is slow
    readonly_fields = ["event_id", "subject", "item", "event_type", "value", "context",
                       "timestamp", "source", "received_at"]

    time = datetime_column("timestamp", _("time"))

    @admin.display(description=_("user"), ordering="subject__user__username")
    def username(self, obj: Event) -> str:
        user = obj.subject.user
        return user.get_username() if user is not None else "-"


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["time", "subject", "purpose", "granted", "policy_version", "source"]
    list_filter = ["purpose", "granted", "source", "policy_version"]
    search_fields = ["subject__user__username", "subject__key"]
    list_select_related = ["subject"]
    readonly_fields = ["subject", "purpose", "granted", "policy_version", "source", "created_at"]

    time = datetime_column("created_at", _("time"))


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    """Placements: strategy chosen from the installed ones, validated filters, and a preview.

    The form lives in :mod:`personalize.serving.forms`, the preview calls
    :func:`personalize.serving.service.preview`.
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

    def get_urls(self) -> list[Any]:
        from django.urls import path

        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="personalize_placement_preview",
        )
        return [preview, *super().get_urls()]

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


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    """Training history: metrics side by side, train / activate / roll back, a trend plot.

    Every action calls the training service (``personalize.training``); none
    holds logic of its own.
    """

    #: Metrics shown as columns, in order.
    METRIC_COLUMNS = ("ndcg@10", "hit_rate@10", "recall@10", "precision@10", "coverage@10")
    #: Versions per strategy in the trend plots.
    TREND_LENGTH = 30

    list_display = ["strategy", "version", "status_badge", "ndcg_10", "hit_rate_10",
                    "recall_10", "precision_10", "coverage_10", "n_events", "fit_time",
                    "total_time", "artifact_size_display", "created"]
    list_display_links = ["strategy", "version"]
    list_filter = ["strategy", "status"]
    search_fields = ["strategy", "note", "error"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields] + [
        "ndcg_trend", "metrics_table", "artifact_size_display"]
    fieldsets = [
        (None, {"fields": ["strategy", "version", "status", "note", "ndcg_trend"]}),
        (_("Quality on the holdout"), {"fields": ["metrics_table", "parameters"]}),
        (_("Data"), {"fields": ["data_start", "data_end", "n_subjects", "n_items", "n_events"]}),
        (_("Artifact and timing"), {"fields": ["artifact", "artifact_size_display",
                                               "fit_seconds", "total_seconds"]}),
        (_("History"), {"fields": ["created_at", "started_at", "finished_at", "activated_at"]}),
        (_("Error"), {"fields": ["error"], "classes": ["collapse"]}),
    ]
    actions = ["train_now", "activate", "roll_back"]
    change_list_template = "admin/personalize/modelversion/change_list.html"

    # --- columns --------------------------------------------------------------

    @staticmethod
    def _column(key: str, label: str) -> Any:
        """A list_display column showing one metric."""
        @admin.display(description=label)
        def column(self: Any, obj: ModelVersion) -> str:
            value = (obj.metrics or {}).get(key)
            return f"{value:.3f}" if isinstance(value, int | float) else "-"

        return column

    ndcg_10 = _column("ndcg@10", "NDCG@10")
    hit_rate_10 = _column("hit_rate@10", "Hit rate@10")
    recall_10 = _column("recall@10", "Recall@10")
    precision_10 = _column("precision@10", "Precision@10")
    coverage_10 = _column("coverage@10", "Coverage@10")

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: ModelVersion) -> str:
        colours = {"active": "#2e7d32", "failed": "#c62828", "rejected": "#ef6c00"}
        return format_html(
            '<b style="color:{}">{}</b>', colours.get(obj.status, "inherit"),
            obj.get_status_display(),
        )

    @staticmethod
    def _seconds(field: str, label: str) -> Any:
        """A list_display column showing a duration field to the hundredth of a second."""
        @admin.display(description=label, ordering=field)
        def column(self: Any, obj: ModelVersion) -> str:
            value = getattr(obj, field)
            return "-" if value is None else f"{value:.2f} s"

        return column

    fit_time = _seconds("fit_seconds", "Fit time")
    total_time = _seconds("total_seconds", "Total time")
    created = datetime_column("created_at", _("created"))

    @admin.display(description=_("artifact size"), ordering="artifact_size")
    def artifact_size_display(self, obj: ModelVersion) -> str:
        from django.template.defaultfilters import filesizeformat

        return filesizeformat(obj.artifact_size) if obj.artifact_size else "-"

    @admin.display(description=_("ndcg@10 across versions"))
    def ndcg_trend(self, obj: ModelVersion) -> str:
        from django.utils.safestring import mark_safe


        rows = list(ModelVersion.objects.filter(strategy=obj.strategy)
                    .order_by("-version").values_list("version", "metrics")[:self.TREND_LENGTH])
        rows.reverse()
        values = [(metrics or {}).get("ndcg@10") for _, metrics in rows]
        versions = [number for number, _ in rows]
        highlight = versions.index(obj.version) if obj.version in versions else None
        svg = sparkline_svg(values, highlight=highlight, width=240, height=48,
                            label=f"ndcg@10 of {obj.strategy} v{versions[0]}-v{versions[-1]}"
                            if versions else "")
        return mark_safe(svg) if svg else "-"  # noqa: S308 - numbers only, see sparkline_svg

    @admin.display(description=_("metrics"))
    def metrics_table(self, obj: ModelVersion) -> str:
        from django.utils.html import format_html_join

        metrics = obj.metrics or {}
        if not metrics:
            return "-"
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>",
            ((key, f"{value:.4f}" if isinstance(value, float) else value)
             for key, value in metrics.items()),
        )
        return format_html("<table>{}</table>", rows)

    # --- the trend plots above the list ------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
                        ) -> Any:
        from django.utils.safestring import mark_safe


        series: dict[str, list[float | None]] = {}
        for strategy, metrics in (ModelVersion.objects.order_by("strategy", "version")
                                  .values_list("strategy", "metrics")):
            series.setdefault(strategy, []).append((metrics or {}).get("ndcg@10"))
        trends = []
        for strategy, values in series.items():
            values = values[-self.TREND_LENGTH:]
            svg = sparkline_svg(values, label=f"ndcg@10 of {strategy}")
            if svg:
                last = next((v for v in reversed(values) if v is not None), None)
                trends.append((strategy, mark_safe(svg), last))  # noqa: S308 - numbers only
        return super().changelist_view(request, {**(extra_context or {}), "ndcg_trends": trends})

    # --- actions ------------------------------------------------------------------

    def has_train_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("personalize.change_modelversion")

    @admin.action(description=_("Train now (queue a training of these strategies)"),
                  permissions=["train"])
    def train_now(self, request: HttpRequest, queryset: Any) -> None:
        from django.contrib import messages


        names = sorted(set(queryset.values_list("strategy", flat=True)))
        queued = []
        for name in names:
            try:
                train_strategy.delay(name, force=True)
            except Exception as exc:  # broker down: say so instead of a 500
                self.message_user(request, _("Could not queue %(name)s: %(error)s")
                                  % {"name": name, "error": exc}, messages.ERROR)
            else:
                queued.append(name)
        if queued:
            self.message_user(request, _("Training queued for %(names)s.")
                              % {"names": ", ".join(queued)}, messages.SUCCESS)

    @admin.action(description=_("Activate (make live, overriding the quality gate)"),
                  permissions=["train"])
    def activate(self, request: HttpRequest, queryset: Any) -> None:
        self._activate(request, queryset, rollback=False)

    @admin.action(description=_("Roll back to this version"), permissions=["train"])
    def roll_back(self, request: HttpRequest, queryset: Any) -> None:
        self._activate(request, queryset, rollback=True)

    def _activate(self, request: HttpRequest, queryset: Any, *, rollback: bool) -> None:
        from django.contrib import messages


        chosen = list(queryset.order_by("strategy", "version"))
        strategies = [v.strategy for v in chosen]
        if len(set(strategies)) != len(strategies):
            self.message_user(request, _("Choose one version per strategy."), messages.ERROR)
            return
        for version in chosen:
            live = ModelVersion.objects.filter(strategy=version.strategy,
                                               status="active").first()
            if rollback and (live is None or version.version >= live.version):
                self.message_user(
                    request, _("%(v)s is not older than the live version; use Activate.")
                    % {"v": version}, messages.ERROR)
                continue
            who = request.user.get_username()
            verb = f"Rolled back to v{version.version}" if rollback else "Activated"
            was = f" (live was v{live.version})" if live else ""
            note = f"{verb} by {who} in the admin{was}. Before: {version.note}".strip()
            try:
                service.activate_version(version, note=note)
            except ValueError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, _("Now live: %(name)s v%(n)s.")
                                  % {"name": version.strategy, "n": version.version},
                                  messages.SUCCESS)
