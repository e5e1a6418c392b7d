"""Subjects, items, events and the consent ledger: who did what, and what they agreed to."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from personalize.admin.common import ReadOnlyAdmin, datetime_column
from personalize.consent.rights import erase_subjects
from personalize.models import ConsentRecord, Event, Item, Subject


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
