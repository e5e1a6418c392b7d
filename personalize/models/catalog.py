"""The SDK's mirror of the host site's catalog."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _


def content_hash(
    title: str, text: str, categories: list[str], attributes: dict[str, Any]
) -> str:
    """A stable digest of what content models read, so unchanged items are not re-embedded."""
    payload = json.dumps(
        [title, text, list(categories), attributes], sort_keys=True, default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Item(models.Model):
    """Something that can be recommended.

    Items are kept in sync with the host models named in
    ``PERSONALIZE["CATALOG"]`` by signals and ``manage.py personalize_sync_catalog``;
    sites without a host model can create them directly or through event ingestion.
    """

    external_id = models.CharField(_("external id"), max_length=255, unique=True)
    content_type = models.ForeignKey(
        ContentType, verbose_name=_("host model"), null=True, blank=True, on_delete=models.CASCADE
    )
    # NULL, not "": items without a host object must not collide in the unique constraint.
    object_id = models.CharField(  # noqa: DJ001
        _("host object id"), max_length=255, null=True, blank=True
    )
    host_object = GenericForeignKey("content_type", "object_id")
    title = models.CharField(_("title"), max_length=500, blank=True)
    text = models.TextField(_("text"), blank=True, help_text=_("What content models embed."))
    categories = models.JSONField(_("categories"), default=list, blank=True)
    primary_category = models.CharField(
        _("primary category"), max_length=255, blank=True, db_index=True,
        help_text=_("The first category; used for 'popular in <category>' queries."),
    )
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    available = models.BooleanField(_("available"), default=True, db_index=True)
    content_hash = models.CharField(_("content hash"), max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("item")
        verbose_name_plural = _("items")
        ordering = ["external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id"], name="personalize_item_unique_host_object"
            )
        ]

    def __str__(self) -> str:
        return self.title or self.external_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.primary_category = self.categories[0] if self.categories else ""
        self.content_hash = self.compute_content_hash()
        if "update_fields" in kwargs and kwargs["update_fields"] is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "primary_category", "content_hash"}
        super().save(*args, **kwargs)

    def compute_content_hash(self) -> str:
        return content_hash(self.title, self.text, self.categories, self.attributes)
