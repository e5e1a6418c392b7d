"""The one place tracking asks the consent service for permission.

``personalize.consent.service.has_consent`` is the authority (ledger state,
``CONSENT_MODE``, GPC / DNT headers, cached). Tracking fails closed: if the
check cannot be made, nothing is recorded.

The cached answer decides cheaply which events to prepare; the transaction
that stores them asks again under the subjects' row locks
(:func:`lock_for_events`), so an event never outlives a withdrawal or an
erasure that ran while it was on its way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from personalize.backends.database import store_for
from personalize.consent.service import has_consent, has_consent_many, ledger_consent_many
from personalize.models import Subject

logger = logging.getLogger(__name__)

PURPOSE = "personalization"


def personalization_allowed(subject: Subject | int | None, request: Any = None) -> bool:
    """Whether events may be stored for ``subject`` (on this request, if given).

    ``subject=None`` asks about a visitor who has no subject yet: the site's
    default (``CONSENT_MODE``) and the request's GPC / DNT signal decide.
    """
    try:
        return bool(has_consent(subject, PURPOSE, request=request))
    except Exception:
        logger.exception(
            "Consent check failed for subject %s; event not recorded.",
            getattr(subject, "pk", None),
        )
        return False


def personalization_allowed_many(subject_ids: set[int], request: Any = None) -> dict[int, bool]:
    """:func:`personalization_allowed` for many subjects (one cache round trip).

    Subject pks are taken as given: resolve merges first. Fails closed.
    """
    if not subject_ids:
        return {}
    try:
        allowed = has_consent_many(subject_ids, PURPOSE, request=request)
        return {pk: bool(allowed.get(pk, False)) for pk in subject_ids}
    except Exception:
        logger.exception("Consent check failed for %d subjects; not recorded.", len(subject_ids))
        return dict.fromkeys(subject_ids, False)


def lock_for_events(subject_ids: Iterable[int], alias: str) -> dict[int, bool]:
    """Lock the subjects for adding events, then read their consent from the ledger.

    Call inside the transaction that stores the events, after the cached check
    (:func:`personalization_allowed_many`, which also honours the request's
    GPC / DNT signal). The shared row locks make a withdrawal or erasure of
    these subjects wait until the events are committed (and then remove them),
    or make this wait for one in progress and then see it in the ledger.
    Database errors propagate: the caller's transaction cannot go on.

    Args:
        subject_ids: Subject pks.
        alias: the database the events are written to.

    Returns:
        ``{subject pk: allowed}``; a subject erased meanwhile is not allowed.
    """
    ids = set(subject_ids)
    existing = store_for(alias).lock_subjects(ids, exclusive=False)
    allowed = ledger_consent_many(existing, PURPOSE) if existing else {}
    return {pk: allowed.get(pk, False) for pk in ids}


def may_create_subject(request: Any) -> bool:
    """Whether tracking may create a subject (and so a cookie) for a new visitor.

    Only when the visitor would have the ``personalization`` consent right
    away: in ``opt-out`` mode without a GPC / DNT signal. In ``opt-in`` mode a
    new visitor cannot have agreed yet; the consent endpoint creates the subject
    when they do.
    """
    return personalization_allowed(None, request)
