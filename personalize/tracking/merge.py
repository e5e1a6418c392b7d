"""The anonymous -> signed-in merge: on login the browser's history joins the user's.

On login the anonymous subject of the browser is folded into the user's subject
(:func:`merge_subjects`); on logout the next anonymous subject starts fresh.
What the browser was shown (exposures) and the experiments it took part in
(assignments, outcomes) move with it, under the ``analytics`` purpose.
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
from personalize.models import (
    Assignment,
    ConsentRecord,
    Event,
    Exposure,
    Subject,
    SubjectOutcome,
)
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

    Under the merged ``analytics`` state the source's exposures move to the
    target, and per experiment the earlier of the two assignments is kept
    (the subject stays in the variant it saw first) and the two outcomes
    become one (:func:`merge_experiment_rows`); without it they are deleted.

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
        decided = _carry_consent(locked, target)
        personalization = _granted(decided, "personalization")
        merge_experiment_rows(locked.pk, target.pk, keep=_granted(decided, "analytics"))
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


def _granted(decided: dict[str, bool], purpose: str) -> bool:
    """The merged state of ``purpose``: the decision, else the consent mode's default."""
    if purpose in decided:
        return decided[purpose]
    return bool(personalize_settings.CONSENT_MODE == "opt-out")


def merge_experiment_rows(source_id: int, target_id: int, *, keep: bool) -> None:
    """Move a merged subject's exposures, assignments and outcomes to the target.

    Per experiment the earlier assignment is kept (the other is deleted), and
    the two outcome rows become one in the kept assignment's variant, their
    counts added up: an approximation the next rollup replaces, because it
    recomputes the outcomes of subjects merged since it last ran (a click
    made before signing in may now claim a purchase made after). With
    ``keep=False`` (no ``analytics`` consent) the source's rows are deleted.
    Runs inside the merge's transaction.
    """
    if not keep:
        for model in (Exposure, Assignment, SubjectOutcome):
            model.objects.filter(subject_id=source_id).delete()
        return
    kept: dict[int, Assignment] = {}
    theirs = {a.experiment_id: a for a in Assignment.objects.filter(subject_id=target_id)}
    for assignment in Assignment.objects.filter(subject_id=source_id):
        other = theirs.get(assignment.experiment_id)
        if other is not None and (other.assigned_at, other.pk) <= (assignment.assigned_at,
                                                                   assignment.pk):
            assignment.delete()
            kept[other.experiment_id] = other
            continue
        if other is not None:
            other.delete()
        Assignment.objects.filter(pk=assignment.pk).update(subject_id=target_id)
        kept[assignment.experiment_id] = assignment
    Exposure.objects.filter(subject_id=source_id).update(subject_id=target_id)
    outcomes = {o.experiment_id: o for o in SubjectOutcome.objects.filter(subject_id=target_id)}
    counted = ("exposures", "clicks", "add_to_carts", "conversions", "revenue")
    for outcome in SubjectOutcome.objects.filter(subject_id=source_id):
        into = outcomes.get(outcome.experiment_id)
        if into is None:  # only the source took part: its row becomes the target's
            outcome.subject_id = target_id
            into = outcome
        else:
            for name in counted:
                setattr(into, name, getattr(into, name) + getattr(outcome, name))
            into.first_exposed_at = min(into.first_exposed_at, outcome.first_exposed_at)
            outcome.delete()
        chosen = kept.get(into.experiment_id)
        if chosen is not None:
            into.variant_id = chosen.variant_id
        into.save()


def _carry_consent(source: Subject, target: Subject) -> dict[str, bool]:
    """Append the source's newer decisions to the target; returns the merged decisions."""
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
    return final


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
