"""Admin screens: catalog and placements are editable; history is read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from personalize.models import ConsentRecord, Event, Item, ModelVersion, Placement, Subject


class ReadOnlyAdmin(admin.ModelAdmin):
    """For history that editing would corrupt: view and search, never add or change."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["key", "kind", "user", "created_at", "last_seen_at", "event_count"]
    list_filter = [("user", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["key", "visitor_id", "user__username"]
    readonly_fields = ["key", "user", "visitor_id", "merged_into", "created_at", "last_seen_at"]
    list_select_related = ["user"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("events"))
    def event_count(self, obj: Subject) -> int:
        return obj.events.count()


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "primary_category", "available", "updated_at"]
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


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "event_type", "subject", "item", "value", "source"]
    list_filter = ["event_type", "source", ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["subject__key", "item__external_id", "item__title", "=event_id"]
    list_select_related = ["subject", "item"]
    date_hierarchy = "timestamp"
    show_full_result_count = False  # COUNT(*) over millions of events is slow
    readonly_fields = ["event_id", "subject", "item", "event_type", "value", "context",
                       "timestamp", "source", "received_at"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "subject", "purpose", "granted", "policy_version", "source"]
    list_filter = ["purpose", "granted", "source", "policy_version"]
    search_fields = ["subject__key"]
    list_select_related = ["subject"]
    readonly_fields = ["subject", "purpose", "granted", "policy_version", "source", "created_at"]


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ["name", "heading", "strategy_display", "limit", "diversity", "cache_ttl",
                    "enabled"]
    list_editable = ["enabled"]
    list_filter = ["enabled"]
    search_fields = ["name", "heading"]
    fieldsets = [
        (None, {"fields": ["name", "heading", "enabled"]}),
        (_("What to show"), {"fields": ["strategy", "fallback", "limit", "diversity", "filters"]}),
        (_("Caching"), {"fields": ["cache_ttl"]}),
    ]

    @admin.display(description=_("strategy"), ordering="strategy")
    def strategy_display(self, obj: Placement) -> str:
        return obj.strategy or _("(default)")


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ["strategy", "version", "status_badge", "metric_summary", "n_events",
                    "fit_seconds", "artifact_size_display", "created_at"]
    list_filter = ["strategy", "status"]
    search_fields = ["strategy", "note", "error"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: ModelVersion) -> str:
        colours = {"active": "#2e7d32", "failed": "#c62828", "rejected": "#ef6c00"}
        return format_html(
            '<b style="color:{}">{}</b>', colours.get(obj.status, "inherit"),
            obj.get_status_display(),
        )

    @admin.display(description=_("metrics"))
    def metric_summary(self, obj: ModelVersion) -> str:
        keys = [k for k in ("ndcg@10", "hit_rate@10", "recall@10") if k in obj.metrics]
        return ", ".join(f"{k} {obj.metrics[k]:.3f}" for k in keys) or "-"

    @admin.display(description=_("artifact"), ordering="artifact_size")
    def artifact_size_display(self, obj: ModelVersion) -> str:
        from django.template.defaultfilters import filesizeformat

        return filesizeformat(obj.artifact_size) if obj.artifact_size else "-"
