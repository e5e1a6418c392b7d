"""The anonymous -> signed-in merge: on login the browser's history joins the user's.

On login the anonymous subject of the browser is folded into the user's subject
(:func:`merge_subjects`); on logout the next anonymous subject starts fresh.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from personalize.conf import personalize_settings
from personalize.consent.service import invalidate_consent_cache
from personalize.identity.subjects import subject_for_user, subject_for_visitor
from personalize.identity.visitors import STATE_ATTR, read_visitor_cookie
from personalize.models import ConsentRecord, Event, Subject
from personalize.tracking.announce import announce_events

logger = logging.getLogger(__name__)


def merge_subjects(source: Subject, target: Subject) -> int:
    """Fold an anonymous subject into a user's subject.

    Consent is carried per purpose: the newer decision of the two wins and is
    appended to the target's ledger (the source keeps its own ledger as the
    record of what was agreed on that browser). If the merged ``personalization``
    state is not granted, the source's events are deleted instead of moved.
    Otherwise every event moves (event ids are globally unique, so nothing is
    duplicated) and ``source.merged_into`` points at the target. Idempotent: an
    already merged source is left alone.

    Args:
        source: the anonymous subject.
        target: the signed-in user's subject.

    Returns:
        How many events moved.
    """
    if source.pk == target.pk:
        return 0
    with transaction.atomic():
        locked = Subject.objects.select_for_update().filter(pk=source.pk).first()
        if locked is None or locked.merged_into_id is not None:
            return 0
        personalization = _carry_consent(locked, target)
        events = Event.objects.filter(subject_id=locked.pk)
        moved = 0
        item_ids: set[int] = set()
        if personalization:
            item_ids = set(events.filter(item__isnull=False).values_list("item_id", flat=True))
            moved = events.update(subject_id=target.pk)
        else:
            events.delete()
        locked.merged_into = target
        locked.visitor_id = None
        locked.save(update_fields=["merged_into", "visitor_id", "last_seen_at"])
        source.merged_into_id, source.visitor_id = target.pk, None
        if moved:
            transaction.on_commit(
                lambda: announce_events({target.pk}, item_ids, moved, sender=Subject)
            )
    _invalidate_consent_cache(target)
    return moved


def _latest_per_purpose(records: list[ConsentRecord]) -> dict[str, ConsentRecord]:
    latest: dict[str, ConsentRecord] = {}
    for record in records:
        current = latest.get(record.purpose)
        if current is None or (record.created_at, record.pk) > (current.created_at, current.pk):
            latest[record.purpose] = record
    return latest


def _carry_consent(source: Subject, target: Subject) -> bool:
    """Append the source's newer decisions to the target; True if personalization stays granted."""
    rows = list(ConsentRecord.objects.filter(subject_id__in=[source.pk, target.pk]))
    mine = _latest_per_purpose([r for r in rows if r.subject_id == source.pk])
    theirs = _latest_per_purpose([r for r in rows if r.subject_id == target.pk])
    final: dict[str, bool] = {purpose: r.granted for purpose, r in theirs.items()}
    for purpose, record in mine.items():
        current = theirs.get(purpose)
        if current is None or record.created_at > current.created_at:
            ConsentRecord.objects.create(
                subject=target, purpose=purpose, granted=record.granted,
                policy_version=record.policy_version, source=record.source,
            )
            final[purpose] = record.granted
    if "personalization" in final:
        return final["personalization"]
    return bool(personalize_settings.CONSENT_MODE == "opt-out")


def _invalidate_consent_cache(subject: Subject) -> None:
    # The consent service caches current state; appended ledger rows must show.
    try:
        invalidate_consent_cache(subject)
    except Exception:
        logger.exception("Could not clear the consent cache of subject %s", subject.pk)


def on_user_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: the browser's anonymous history joins the user's."""
    if request is None or getattr(user, "pk", None) is None:
        return
    state = getattr(request, STATE_ATTR, None)
    anon: Subject | None = None
    if state is not None:
        anon = state.anonymous()
    else:
        vid = read_visitor_cookie(request)
        anon = subject_for_visitor(vid) if vid else None
    if anon is not None:
        target = Subject.objects.filter(user_id=user.pk).first()
        if target is None:
            # First sign-in: the anonymous subject becomes the user's, keeping its
            # key (and any trained vector) instead of starting an empty one.
            try:
                with transaction.atomic():
                    updated = Subject.objects.filter(
                        pk=anon.pk, user__isnull=True, merged_into__isnull=True
                    ).update(user_id=user.pk, visitor_id=None)
            except IntegrityError:  # a concurrent request gave the user a subject
                updated = 0
            if not updated:  # raced with another login: merge into whatever exists now
                target = subject_for_user(user)
        if target is not None:
            merge_subjects(anon, target)
    if state is not None:
        state.forget()


def on_user_logged_out(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: the next anonymous subject starts fresh."""
    if request is None:
        return
    state = getattr(request, STATE_ATTR, None)
    if state is not None:
        state.forget()
