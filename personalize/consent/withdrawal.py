"""What withdrawing the ``personalization`` consent does to a subject's events."""

from __future__ import annotations

import uuid

from django.db import transaction

from personalize.conf import personalize_settings
from personalize.consent.cache import delete_subject_keys
from personalize.models import Event, Subject
from personalize.signals import subject_erased

#: Rows per statement when ``ON_CONSENT_REVOKED = "anonymize"`` rewrites events.
ANONYMIZE_CHUNK = 2000


def withdraw_events(subject: Subject) -> int:
    """Erase or anonymize the subject's events (``ON_CONSENT_REVOKED``); returns how many.

    Runs inside the transaction that records the withdrawal, which holds the
    subject's row lock exclusively: writers of events hold it shared, so every
    event stored before is removed here and none is stored after (they read the
    withdrawal from the ledger once they get the lock). After the commit,
    ``subject_erased`` (``reason="consent_revoked"``) is sent and the subject's
    cache keys are deleted.
    """
    events = Event.objects.filter(subject_id=subject.pk)
    if personalize_settings.ON_CONSENT_REVOKED == "anonymize":
        affected = anonymize_events(subject)
    else:
        affected, _ = events.delete()
    subject_id, key = subject.pk, subject.key

    def _after_commit() -> None:
        subject_erased.send(
            sender=Subject, subject_id=subject_id, key=key, reason="consent_revoked"
        )
        # Cached blocks were built from the events just removed.
        delete_subject_keys(subject_id, key)

    transaction.on_commit(_after_commit)
    return affected


def anonymize_events(subject: Subject) -> int:
    """Move the subject's events to a fresh anonymous subject with no link back.

    The new subject has no user, no visitor id and no consent records; each
    event gets a new ``event_id`` (a client-chosen id could link back to the
    client's logs) and an empty ``context`` (free-form data such as a search
    phrase may identify a person). Items, types, values and timestamps stay, so
    popularity and co-occurrence models keep learning from them. Must run in a
    transaction.

    Returns:
        How many events moved.
    """
    ids = list(Event.objects.filter(subject_id=subject.pk).values_list("pk", flat=True))
    if not ids:
        return 0
    bucket = Subject.objects.create()
    fields = ("item_id", "event_type", "value", "timestamp", "source")
    for start in range(0, len(ids), ANONYMIZE_CHUNK):
        chunk = ids[start:start + ANONYMIZE_CHUNK]
        rows = Event.objects.filter(pk__in=chunk).order_by("pk").values_list(*fields)
        Event.objects.bulk_create([
            Event(
                event_id=uuid.uuid4(), subject_id=bucket.pk, item_id=item_id,
                event_type=event_type, value=value, timestamp=ts, source=source, context={},
            )
            for item_id, event_type, value, ts, source in rows
        ])
        Event.objects.filter(pk__in=chunk).delete()
    return len(ids)
