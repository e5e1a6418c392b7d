"""Event validation shared by ``track()`` and the ingestion endpoint.

One :class:`EventValidator` is built per call or batch: it reads the settings
once and precomputes its lookups, then checks each event in a single pass
without touching the database. Item existence is checked afterwards for the
whole batch at once (see :mod:`personalize.tracking.ingest`).

An event as JSON (every field but ``type`` optional)::

    {"event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "type": "rating",
     "item": "sku-123", "value": 4.5, "timestamp": "2025-01-31T12:00:00Z",
     "context": {"placement": "home"}, "subject": "<subject key or user id>"}

Two context keys tie an event to a rendered block (a click, for attribution):
``"impression"``, the block's impression id (a UUID, stored in its canonical
text; a ``uuid.UUID`` from ``track()`` too), and ``"position"``, the item's
1-based position in it. Anything else there is rejected, naming
``context.impression`` or ``context.position``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from personalize.conf import personalize_settings

#: Fields an event object may carry.
EVENT_FIELDS = frozenset(
    {"event_id", "type", "item", "value", "timestamp", "context", "subject"}
)
#: Largest absolute ``value`` of types that have no range of their own.
MAX_ABS_VALUE = 1e9
#: Longest item external id (``Item.external_id``).
MAX_ITEM_ID_LENGTH = 255
#: Longest context key.
MAX_CONTEXT_KEY_LENGTH = 64
#: Longest subject key (``Subject.key``).
MAX_SUBJECT_KEY_LENGTH = 32
#: Context keys naming the rendered block an event comes from (see the module docstring).
IMPRESSION, POSITION = "impression", "position"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(slots=True)
class Problem:
    """Why one event was rejected: the offending field and a reason for humans."""

    field: str
    reason: str


class InvalidEvent(ValueError):
    """Raised by ``track()`` for an event that fails validation."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(slots=True)
class CleanEvent:
    """A validated event, ready to be matched with its item and subject."""

    event_type: str
    item_ref: str | None
    value: float | None
    timestamp: datetime
    context: dict[str, Any]
    event_id: str | None
    subject_ref: str | int | None = None
    item_pk: int | None = None


def text_ok(value: str) -> bool:
    """Whether a string can be stored by every backend (no NUL, no lone surrogate)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _number(value: Any) -> float | None:
    """A finite float from a JSON number, or ``None`` (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class EventValidator:
    """Checks events against the settings read once at construction.

    Args:
        now: the reference time for the future-timestamp check (default: now).
        allow_subject: whether events may name their subject (server callers).
    """

    def __init__(self, now: datetime | None = None, *, allow_subject: bool = False) -> None:
        s = personalize_settings
        weights = s.event_weights
        self.now = now or timezone.now()
        self.allow_subject = allow_subject
        self.types = frozenset(weights)
        self.rating_types = frozenset(t for t, w in weights.items() if w is None)
        # An event that expresses a preference is meaningless without an item.
        self.item_required = frozenset(t for t, w in weights.items() if w is None or w != 0)
        low, high = s.RATING_RANGE
        self.rating_low, self.rating_high = float(low), float(high)
        self.max_dwell = float(s.MAX_DWELL_SECONDS)
        self.skew = int(s.TIMESTAMP_SKEW_SECONDS)
        self.latest = self.now + timedelta(seconds=self.skew)
        self.max_context = int(s.MAX_CONTEXT_BYTES)

    # -- the JSON shape -------------------------------------------------------

    def clean(self, raw: Any) -> CleanEvent | Problem:
        """Validate one event object as decoded from JSON."""
        if not isinstance(raw, dict):
            return Problem("event", "must be a JSON object")
        if not raw.keys() <= EVENT_FIELDS:
            key = next(k for k in raw if k not in EVENT_FIELDS)
            hint = " (use 'type')" if key == "event_type" else ""
            return Problem(str(key)[:64], f"unknown field{hint}")
        subject_ref = raw.get("subject")
        if subject_ref is not None:
            if not self.allow_subject:
                return Problem("subject", "only server-to-server callers may name a subject")
            if isinstance(subject_ref, bool) or not isinstance(subject_ref, str | int):
                return Problem("subject", "must be a subject key (string) or a user id (integer)")
            if isinstance(subject_ref, str) and (
                not subject_ref or len(subject_ref) > MAX_SUBJECT_KEY_LENGTH
                or not subject_ref.isalnum() or not subject_ref.isascii()
            ):
                return Problem("subject", "not a subject key")
            if isinstance(subject_ref, int) and not 0 < subject_ref < 2**63:
                return Problem("subject", "not a user id")
        item = raw.get("item")
        if item is not None:
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            elif not isinstance(item, str):
                return Problem("item", "must be an item id (string or integer)")
        return self.clean_fields(
            raw.get("type"), item, raw.get("value"), raw.get("timestamp"),
            raw.get("context"), raw.get("event_id"), subject_ref,
        )

    # -- the fields (track() calls this directly) -----------------------------

    def clean_fields(
        self,
        event_type: Any,
        item_ref: str | None,
        value: Any,
        timestamp: Any,
        context: Any,
        event_id: Any,
        subject_ref: str | int | None = None,
        *,
        item_known: bool = False,
    ) -> CleanEvent | Problem:
        """Validate the fields of one event.

        ``item_ref`` is an external id or ``None``; ``item_known`` says the caller
        already holds the Item (``track()`` given an Item or a catalog object).
        """
        if not isinstance(event_type, str) or not event_type:
            return Problem("type", "required: an event type name")
        if event_type not in self.types:
            return Problem("type", f"unknown event type {event_type[:40]!r}")

        if item_ref is not None:
            if not item_ref or len(item_ref) > MAX_ITEM_ID_LENGTH or not text_ok(item_ref):
                return Problem("item", f"must be 1 to {MAX_ITEM_ID_LENGTH} valid characters")
        elif event_type in self.item_required and not item_known:
            return Problem("item", f"required for {event_type!r} events")

        number: float | None = None
        if value is not None:
            number = _number(value)
            if number is None:
                return Problem("value", "must be a finite number")
        if event_type in self.rating_types:
            if number is None:
                return Problem("value", "required for ratings")
            if not self.rating_low <= number <= self.rating_high:
                return Problem(
                    "value", f"must be between {self.rating_low:g} and {self.rating_high:g}"
                )
        elif event_type == "dwell":
            if number is None:
                return Problem("value", "required: seconds on the page")
            if not 0.0 <= number <= self.max_dwell:
                return Problem("value", f"must be between 0 and {self.max_dwell:g} seconds")
        elif number is not None and abs(number) > MAX_ABS_VALUE:
            return Problem("value", f"must be between {-MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}")

        if timestamp is None:
            when = self.now
        else:
            parsed = parse_timestamp(timestamp)
            if isinstance(parsed, Problem):
                return parsed
            when = parsed
            if when > self.latest:
                return Problem("timestamp", f"more than {self.skew} seconds in the future")

        if context is None:
            context = {}
        else:
            if isinstance(context, dict) and isinstance(context.get(IMPRESSION), uuid.UUID):
                context = {**context, IMPRESSION: str(context[IMPRESSION])}  # from track()
            problem = self.check_context(context)
            if problem is not None:
                return problem
            cleaned = clean_block_reference(context)
            if isinstance(cleaned, Problem):
                return cleaned
            context = cleaned

        uid: str | None = None
        if event_id is not None:
            uid = canonical_uuid(event_id)
            if uid is None:
                return Problem("event_id", "must be a UUID")
        return CleanEvent(event_type, item_ref, number, when, context, uid, subject_ref)

    def check_context(self, context: Any) -> Problem | None:
        """A flat JSON object of scalars, at most ``MAX_CONTEXT_BYTES`` as JSON."""
        if not isinstance(context, dict):
            return Problem("context", "must be a JSON object")
        for key, item in context.items():
            if not isinstance(key, str) or len(key) > MAX_CONTEXT_KEY_LENGTH:
                return Problem(
                    "context", f"keys must be strings of at most {MAX_CONTEXT_KEY_LENGTH}"
                )
            if item is not None and not isinstance(item, str | int | float | bool):
                return Problem("context", f"{key[:40]!r}: values must be strings, numbers, "
                               "booleans or null (a flat object)")
        try:
            encoded = json.dumps(context, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (ValueError, UnicodeEncodeError):
            return Problem("context", "contains a non-finite number or an invalid character")
        if len(encoded) > self.max_context:
            return Problem("context", f"larger than {self.max_context} bytes as JSON")
        if b"\\u0000" in encoded:
            return Problem("context", "contains a NUL character")
        return None


def clean_block_reference(context: dict[str, Any]) -> dict[str, Any] | Problem:
    """Check (and normalise) the ``impression`` and ``position`` keys of a context.

    ``impression`` must be a UUID (or null) and is stored as its canonical
    text; ``position`` a whole number >= 1 (or null).
    """
    if IMPRESSION not in context and POSITION not in context:
        return context
    impression, position = context.get(IMPRESSION), context.get(POSITION)
    cleaned = dict(context)
    if impression is not None:
        canonical = canonical_uuid(impression)
        if canonical is None:
            return Problem(f"context.{IMPRESSION}",
                           "must be the impression id of a block (a UUID)")
        cleaned[IMPRESSION] = canonical
    if position is not None:
        number = _number(position)
        if number is None or number != int(number) or number < 1:
            return Problem(f"context.{POSITION}",
                           "must be the item's 1-based position in its block (a whole number)")
        cleaned[POSITION] = int(number)
    return cleaned


def canonical_uuid(value: Any) -> str | None:
    """The canonical text of a UUID (lower case, hyphenated), or ``None`` if it is not one.

    Ids are compared as this text, so ``"ABC..."`` and ``"{abc...}"`` are one event.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str) or len(value) > 64:
        return None
    if _CANONICAL_UUID.fullmatch(value):  # the usual form: no object needed
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def parse_timestamp(value: Any) -> datetime | Problem:
    """An aware datetime from ISO 8601 text, Unix seconds or a datetime (naive means UTC)."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        if len(value) > 64:
            return Problem("timestamp", "not an ISO 8601 date-time")
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return Problem("timestamp", "not an ISO 8601 date-time")
    else:
        seconds = _number(value)
        if seconds is None:
            return Problem("timestamp", "must be an ISO 8601 date-time or Unix seconds")
        try:
            when = _EPOCH + timedelta(seconds=seconds)
        except OverflowError:
            return Problem("timestamp", "out of range")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        if when < _EPOCH:
            return Problem("timestamp", "before 1970")
    except OverflowError:
        return Problem("timestamp", "out of range")
    return when
