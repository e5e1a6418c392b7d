"""Subjects by user, by visitor id, and through merges.

The lookups behind :func:`personalize.identity.resolve_subject`: a user's
subject (created on first need), a visitor cookie's live anonymous subject,
and the subject a merged one now lives on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest

from personalize.backends.database import store_for
from personalize.models import Subject

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

#: Longest ``merged_into`` chain followed (a chain is normally one link long).
MAX_MERGE_DEPTH = 8


def subject_for_user(user: AbstractBaseUser, create: bool = True) -> Subject | None:
    """The subject of a signed-in user, created on first need.

    Args:
        user: an authenticated user instance.
        create: create the subject when the user has none yet.

    Returns:
        The user's subject, or ``None`` if there is none and ``create`` is false.
    """
    subject = store_for(router.db_for_read(Subject)).subject(user_id=user.pk)
    if subject is None and create:
        try:
            with transaction.atomic():
                subject = Subject.objects.create(user_id=user.pk)
        except IntegrityError:  # a concurrent request created it first
            subject = Subject.objects.get(user_id=user.pk)
    return subject


def subject_for_visitor(visitor_id: str) -> Subject | None:
    """The live anonymous subject behind a visitor id (not merged, not signed in)."""
    return store_for(router.db_for_read(Subject)).subject(visitor_id=visitor_id)


def follow_merges(subject: Subject) -> Subject:
    """The subject whose history now holds ``subject``'s (itself unless it was merged)."""
    depth = 0
    while subject.merged_into_id is not None and depth < MAX_MERGE_DEPTH:
        target = Subject.objects.filter(pk=subject.merged_into_id).first()
        if target is None:
            break
        subject, depth = target, depth + 1
    return subject


def as_http_request(obj: Any) -> HttpRequest | None:
    # A DRF Request wraps the HttpRequest; both carry the same state attribute.
    inner = getattr(obj, "_request", obj)
    return inner if isinstance(inner, HttpRequest) else None


def is_user(obj: Any) -> bool:
    return isinstance(obj, AnonymousUser) or (
        hasattr(obj, "is_authenticated") and hasattr(obj, "pk") and hasattr(obj, "get_username")
    )
