"""``track()``: record one event from server-side code."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, router, transaction

from personalize.catalog.adapter import get_adapter_for
from personalize.catalog.sync import sync_object
from personalize.identity import resolve_subject, visitor_state
from personalize.identity.subjects import as_http_request
from personalize.models import Event, Item
from personalize.models.events import EventSource
from personalize.tracking.announce import announce_events
from personalize.tracking.consent_gate import (
    lock_for_events,
    may_create_subject,
    personalization_allowed,
)
from personalize.tracking.ingest import items_for_refs
from personalize.tracking.validation import EventValidator, InvalidEvent, Problem

__all__ = ["InvalidEvent", "track"]


def _item_reference(item: Any) -> tuple[str | None, int | None]:
    """``(external_id, Item.pk)`` for whatever ``track()`` was given as the item."""
    if item is None:
        return None, None
    if isinstance(item, Item):
        if item.pk is None:
            raise InvalidEvent("item", "the Item is not saved")
        return item.external_id, item.pk
    if isinstance(item, str):
        return item, None
    if isinstance(item, int) and not isinstance(item, bool):
        return str(item), None
    if isinstance(item, models.Model):
        return None, _item_pk_for_host_object(item)
    raise InvalidEvent(
        "item", f"must be an Item, a catalog object or an id, not {type(item).__name__}"
    )


def _item_pk_for_host_object(obj: models.Model) -> int:
    adapter = get_adapter_for(type(obj))
    if adapter is None:
        raise InvalidEvent(
            "item", f"{obj._meta.label} is not a catalog model (PERSONALIZE['CATALOG'])"
        )
    if obj.pk is None:
        raise InvalidEvent("item", "the catalog object is not saved")
    content_type = ContentType.objects.get_for_model(obj)  # cached by Django
    pk = (
        Item.objects.filter(content_type=content_type, object_id=str(obj.pk))
        .values_list("pk", flat=True)
        .first()
    )
    if pk is None:
        # The mirror is missing (catalog not synced yet): the object is known to
        # the site, so creating its Item is always right.
        synced = sync_object(obj)
        if synced is None:
            raise InvalidEvent("item", "the catalog object could not be mirrored")
        pk = synced.pk
    return pk


def track(
    request_or_subject: Any,
    event_type: str,
    item: Any = None,
    value: float | None = None,
    *,
    event_id: uuid.UUID | str | None = None,
    timestamp: datetime | float | str | None = None,
    source: str = EventSource.SERVER,
    **context: Any,
) -> Event | None:
    """Record what a person did, if they allow it.

    Args:
        request_or_subject: the current request (the usual case: the visitor or
            signed-in user behind it), a user, or a :class:`Subject`.
        event_type: a type from ``PERSONALIZE["EVENT_TYPES"]`` /
            ``EXTRA_EVENT_TYPES`` such as ``"view"`` or ``"purchase"``.
        item: an :class:`Item`, an instance of a catalog model (mapped through
            the catalog adapter), or an item's external id.
        value: the rating for ratings, seconds for ``dwell``, otherwise optional.
        event_id: a UUID making the call idempotent: a second call with the
            same id stores nothing and returns ``None``.
        timestamp: when it happened (default now); not in the future beyond
            ``TIMESTAMP_SKEW_SECONDS``.
        source: stored in ``Event.source``.
        **context: a small flat JSON object stored with the event
            (``placement="home"``, ``strategy="item_knn"``). A click on a
            recommended item names its block: ``impression=`` (the block's
            impression id, a UUID or its text) and ``position=`` (the item's
            1-based position), which attribute what follows to the block.

    Returns:
        The stored event, or ``None`` when nothing was stored: the subject has
        not given the ``personalization`` consent (nothing is written, not even
        the subject), the request comes from a crawler, or ``event_id`` was
        already recorded.

    Raises:
        InvalidEvent: when the event fails validation (unknown type, value out
            of range, unknown item with ``CREATE_UNKNOWN_ITEMS`` off, ...): a
            programming error in the caller, so it is loud.
    """
    request = as_http_request(request_or_subject)
    if request is not None and visitor_state(request).is_bot:
        return None
    item_ref, item_pk = _item_reference(item)
    outcome = EventValidator().clean_fields(
        event_type, item_ref if item_pk is None else None, value, timestamp,
        context or None, event_id, item_known=item_pk is not None,
    )
    if isinstance(outcome, Problem):
        raise InvalidEvent(outcome.field, outcome.reason)

    subject = resolve_subject(request_or_subject, create=False)
    if subject is None:
        if request is None or not may_create_subject(request):
            return None
        subject = resolve_subject(request_or_subject, create=True)
        if subject is None:
            return None
    if not personalization_allowed(subject, request):
        return None

    if item_pk is None and item_ref is not None:
        item_pk = items_for_refs({item_ref}).get(item_ref)
        if item_pk is None:
            raise InvalidEvent("item", f"unknown item {item_ref[:60]!r}")

    event = Event(
        event_id=uuid.UUID(outcome.event_id) if outcome.event_id else uuid.uuid4(),
        subject_id=subject.pk,
        item_id=item_pk,
        event_type=outcome.event_type,
        value=outcome.value,
        context=outcome.context,
        timestamp=outcome.timestamp,
        source=source,
    )
    alias = router.db_for_write(Event)
    with transaction.atomic(using=alias):
        # Asked again under the subject's row lock: a withdrawal or erasure that
        # ran since the cached check is honoured, one that starts now waits.
        if not lock_for_events([subject.pk], alias)[subject.pk]:
            return None
        if not _insert(event, replayable=outcome.event_id is not None):
            return None
        _announce(event.subject_id, event.item_id, alias)
    return event


def _insert(event: Event, *, replayable: bool) -> bool:
    """Insert one event; ``False`` if its client-supplied id is already stored."""
    if not replayable:
        event.save(force_insert=True)
        return True
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError:
        if Event.objects.filter(event_id=event.event_id).exists():
            return False
        raise
    return True


def _announce(subject_pk: int, item_pk: int | None, alias: str) -> None:
    subject_ids = {subject_pk}
    item_ids = {item_pk} if item_pk is not None else set()
    transaction.on_commit(lambda: announce_events(subject_ids, item_ids, 1), using=alias)
