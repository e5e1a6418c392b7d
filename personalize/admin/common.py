"""What the admin screens share: read-only history and date-time columns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format

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
