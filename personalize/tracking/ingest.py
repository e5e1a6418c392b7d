"""Batch ingestion: validate every event, store the valid ones in one statement.

The path is built for throughput: one validation pass with precomputed
lookups, then a fixed number of queries per batch whatever its size (subjects
named by server callers, the batch's items, the event ids already stored) and a
single bulk insert. No per-event query. The insert runs in one transaction
with the subjects' row locks and a second look at their consent in the ledger,
so a withdrawal or an erasure that runs meanwhile removes every event it
should (see :func:`store_rows`).

Each event gets a result at its index: ``accepted``, ``duplicate`` (its
``event_id`` is already stored, or appeared earlier in the same batch: it is
stored once) or ``rejected`` with the offending ``field`` and a ``reason``.
Valid events are stored even when others in the batch are rejected.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router, transaction

from personalize.backends.database import EventRow, chunked, store_for
from personalize.conf import personalize_settings
from personalize.identity import follow_merges
from personalize.models import Event, Item, Subject
from personalize.models.events import EventSource
from personalize.signals import items_changed
from personalize.tracking.announce import announce_events
from personalize.tracking.consent_gate import lock_for_events, personalization_allowed_many
from personalize.tracking.validation import CleanEvent, EventValidator, Problem

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
REJECTED = "rejected"

NO_CONSENT = Problem("consent", "no personalization consent for this subject")


@dataclass(slots=True)
class EventResult:
    """The outcome for the event at ``index`` of a batch."""

    index: int
    status: str
    event_id: str | None = None
    field: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id is not None:
            data["event_id"] = self.event_id
        if self.field is not None:
            data["field"] = self.field
            data["reason"] = self.reason
        return data


@dataclass
class IngestReport:
    """Per-index results of one batch."""

    results: list[EventResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def accepted(self) -> int:
        return self.count(ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self.count(DUPLICATE)

    @property
    def rejected(self) -> int:
        return self.count(REJECTED)

    @property
    def stored_or_known(self) -> bool:
        """Whether at least one event is now in the database (new or replayed)."""
        return any(r.status != REJECTED for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicate": self.duplicates,
            "rejected": self.rejected,
            "results": [r.as_dict() for r in self.results],
        }


def reject_all(count: int, problem: Problem) -> IngestReport:
    """A report rejecting ``count`` events for one reason (consent, bots)."""
    return IngestReport(
        [EventResult(i, REJECTED, field=problem.field, reason=problem.reason) for i in range(count)]
    )


def subjects_for_refs(refs: set[str | int]) -> dict[str | int, Subject]:
    """Subjects named by server callers: a subject key (str) or a user id (int).

    A user without a subject yet gets one (in one bulk insert); unknown keys and
    user ids are left out of the result. Merged subjects resolve to their target.
    """
    keys = sorted(r for r in refs if isinstance(r, str))
    user_ids = sorted(r for r in refs if isinstance(r, int))
    found: dict[str | int, Subject] = {}
    for chunk in chunked(keys):
        for subject in Subject.objects.filter(key__in=chunk):
            found[subject.key] = subject
    if user_ids:
        by_user: dict[int, Subject] = {}
        for chunk in chunked(user_ids):
            by_user.update(
                (s.user_id, s) for s in Subject.objects.filter(user_id__in=chunk)
                if s.user_id is not None
            )
        missing = [u for u in user_ids if u not in by_user]
        if missing:
            user_model = get_user_model()
            existing_users: list[int] = []
            for chunk in chunked(missing):
                existing_users.extend(
                    user_model._default_manager.filter(pk__in=chunk).values_list("pk", flat=True)
                )
            if existing_users:
                Subject.objects.bulk_create(
                    [Subject(user_id=u) for u in existing_users], ignore_conflicts=True
                )
                for chunk in chunked(existing_users):
                    by_user.update(
                        (s.user_id, s) for s in Subject.objects.filter(user_id__in=chunk)
                        if s.user_id is not None
                    )
        found.update(by_user.items())
    for ref, subject in list(found.items()):
        if subject.merged_into_id is not None:
            found[ref] = follow_merges(subject)
    return found


def items_for_refs(external_ids: set[str], create: bool | None = None) -> dict[str, int]:
    """``external_id -> Item.pk`` for the given ids, creating missing ones if allowed.

    Args:
        external_ids: the item ids the batch names.
        create: create unknown items (default ``PERSONALIZE["CREATE_UNKNOWN_ITEMS"]``).
    """
    if create is None:
        create = bool(personalize_settings.CREATE_UNKNOWN_ITEMS)
    ids = sorted(external_ids)
    found = _item_pks(ids)
    missing = [x for x in ids if x not in found]
    if missing and create:
        new_items = [Item(external_id=x) for x in missing]
        for item in new_items:
            item.content_hash = item.compute_content_hash()
        Item.objects.bulk_create(new_items, ignore_conflicts=True)
        created = _item_pks(missing)
        found.update(created)
        if created:
            new_pks = set(created.values())
            transaction.on_commit(lambda: items_changed.send(sender=Item, item_ids=new_pks))
    return found


def _item_pks(external_ids: list[str]) -> dict[str, int]:
    """``external_id -> pk`` of the items that exist."""
    found: dict[str, int] = {}
    for chunk in chunked(external_ids):
        found.update(Item.objects.filter(external_id__in=chunk).values_list("external_id", "pk"))
    return found


def ingest_events(
    raw_events: Sequence[Any],
    *,
    subject: Subject | None = None,
    no_subject: Problem | None = None,
    request: Any = None,
    allow_subject: bool = False,
    source: str = EventSource.API,
    now: datetime | None = None,
) -> IngestReport:
    """Validate and store a batch of events decoded from JSON.

    Args:
        raw_events: the event objects (anything: each is validated).
        subject: the subject of events that do not name one (a browser's own).
        no_subject: why an event without a subject is rejected when ``subject``
            is ``None`` (default: the ``subject`` field is required).
        request: the request, so consent can honour its GPC / DNT headers.
        allow_subject: whether events may name their subject (server callers).
        source: stored in ``Event.source``.
        now: the reference time for timestamps (tests).

    Returns:
        The per-index report. Consent is checked per subject: without the
        ``personalization`` consent an event is rejected and nothing is stored.
    """
    validator = EventValidator(now, allow_subject=allow_subject)
    results: list[EventResult | None] = [None] * len(raw_events)

    def reject(index: int, problem: Problem) -> None:
        results[index] = EventResult(index, REJECTED, field=problem.field, reason=problem.reason)

    cleaned: list[tuple[int, CleanEvent]] = []
    refs: set[str | int] = set()
    for index, raw in enumerate(raw_events):
        outcome = validator.clean(raw)
        if isinstance(outcome, Problem):
            reject(index, outcome)
        else:
            cleaned.append((index, outcome))
            if outcome.subject_ref is not None:
                refs.add(outcome.subject_ref)

    subject_map = subjects_for_refs(refs) if refs else {}
    missing_subject = no_subject or Problem("subject", "required: a subject key or user id")
    owned: list[tuple[int, CleanEvent, Subject]] = []
    for index, clean in cleaned:
        owner = subject if clean.subject_ref is None else subject_map.get(clean.subject_ref)
        if owner is None:
            reject(index, missing_subject if clean.subject_ref is None
                   else Problem("subject", "unknown subject"))
        else:
            owned.append((index, clean, owner))

    # Consent for every subject of the batch in one cache round trip.
    allowed = personalization_allowed_many({owner.pk for _, _, owner in owned}, request)
    admitted: list[tuple[int, CleanEvent, Subject]] = []
    external_ids: set[str] = set()
    for index, clean, owner in owned:
        if not allowed.get(owner.pk, False):
            reject(index, NO_CONSENT)
            continue
        admitted.append((index, clean, owner))
        if clean.item_ref is not None:
            external_ids.add(clean.item_ref)

    item_map = items_for_refs(external_ids) if external_ids else {}
    seen: set[str] = set()
    rows: list[EventRow] = []
    for index, clean, owner in admitted:
        item_pk = None
        if clean.item_ref is not None:
            item_pk = item_map.get(clean.item_ref)
            if item_pk is None:
                reject(index, Problem("item", f"unknown item {clean.item_ref[:60]!r}"))
                continue
        uid = clean.event_id
        if uid is None:
            uid = str(uuid.uuid4())
        elif uid in seen:  # a replay inside the batch: stored once
            results[index] = EventResult(index, DUPLICATE, event_id=uid)
            continue
        else:
            seen.add(uid)
        rows.append(EventRow(index, uid, owner.id, item_pk, clean.event_type, clean.value,
                        clean.context, clean.timestamp))

    if rows:
        inserted, refused = store_rows(rows, source)
        for row in rows:
            if row.subject_id in refused:
                reject(row.index, NO_CONSENT)
                continue
            status = ACCEPTED if row.event_id in inserted else DUPLICATE
            results[row.index] = EventResult(row.index, status, event_id=row.event_id)
    return IngestReport([r for r in results if r is not None])


def store_rows(rows: Sequence[EventRow], source: str) -> tuple[dict[str, int | None], set[int]]:
    """Insert the rows, skipping event ids already stored and subjects without consent.

    One transaction: the subjects' row locks and their consent from the ledger
    (:func:`~personalize.tracking.consent_gate.lock_for_events`, so a
    withdrawal or erasure running meanwhile is waited for and honoured), then
    one bulk insert through the database's event store
    (:func:`personalize.backends.database.store_for`). ``event_recorded`` is
    sent after commit.

    Returns:
        ``(inserted, refused)``: ``event_id -> Event.pk`` of the rows inserted
        (the pk is ``None`` where the database does not report it), and the
        subjects whose rows were dropped because their consent is gone.
    """
    alias = router.db_for_write(Event)
    with transaction.atomic(using=alias):
        allowed = lock_for_events({row.subject_id for row in rows}, alias)
        refused = {pk for pk, ok in allowed.items() if not ok}
        kept = [row for row in rows if row.subject_id not in refused]
        inserted = store_for(alias).insert(kept, source) if kept else {}
        _announce_after_commit(kept, inserted, alias)
    return inserted, refused


def _announce_after_commit(rows: Sequence[EventRow], inserted: dict[str, int | None],
                           alias: str) -> None:
    stored = [row for row in rows if row.event_id in inserted]
    if stored:
        subject_ids = {row.subject_id for row in stored}
        item_ids = {row.item_id for row in stored if row.item_id is not None}
        count = len(stored)
        transaction.on_commit(lambda: announce_events(subject_ids, item_ids, count),
                              using=alias)


# --- request bodies -------------------------------------------------------------

#: Envelope key that carries the CSRF token for ``navigator.sendBeacon`` (which
#: cannot set headers); removed before validation.
CSRF_FIELD = "csrfmiddlewaretoken"


class PayloadError(ValueError):
    """The body as a whole is unusable; ``status`` is the HTTP status to answer."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_payload(body: bytes, max_batch: int | None = None) -> tuple[list[Any], str | None]:
    """The events and the CSRF token from an ingestion body.

    Accepts one event object, ``{"events": [...]}`` or a bare list, each of up
    to ``MAX_BATCH_SIZE`` events. ``{"events": [...]}`` and a single event may
    carry ``"csrfmiddlewaretoken"``.

    Raises:
        PayloadError: malformed JSON, a wrong shape, an empty or oversized batch.
    """
    if max_batch is None:
        max_batch = int(personalize_settings.MAX_BATCH_SIZE)
    if not body:
        raise PayloadError("Empty body: send one event object, a list, or {\"events\": [...]}.")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"Body is not UTF-8 (byte {exc.start}).") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise PayloadError(f"Malformed JSON: {reason}.") from None
    token: str | None = None
    if isinstance(data, dict):
        raw_token = data.get(CSRF_FIELD)
        if isinstance(raw_token, str):
            token = raw_token
        if "events" in data:
            extra = sorted(str(k)[:40] for k in data if k not in ("events", CSRF_FIELD))
            if extra:
                raise PayloadError(f"Unknown envelope field(s): {', '.join(extra)}.")
            events = data["events"]
            if not isinstance(events, list):
                raise PayloadError('"events" must be a list of event objects.')
        else:
            data.pop(CSRF_FIELD, None)
            events = [data]
    elif isinstance(data, list):
        events = data
    else:
        raise PayloadError('Body must be an event object, a list, or {"events": [...]}.')
    if not events:
        raise PayloadError("No events in the batch.")
    if len(events) > max_batch:
        raise PayloadError(f"Too many events: {len(events)} (at most {max_batch} per request).")
    return events, token
