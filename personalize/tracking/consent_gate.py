"""The one place tracking asks the consent service for permission.

``personalize.consent.service.has_consent`` is the authority (ledger state,
``CONSENT_MODE``, GPC / DNT headers, cached). Tracking fails closed: if the
check cannot be made, nothing is recorded.
"""

from __future__ import annotations

import logging
from typing import Any

from personalize.consent.service import has_consent, has_consent_many
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


def may_create_subject(request: Any) -> bool:
    """Whether tracking may create a subject (and so a cookie) for a new visitor.

    Only when the visitor would have the ``personalization`` consent right
    away: in ``opt-out`` mode without a GPC / DNT signal. In ``opt-in`` mode a
    new visitor cannot have agreed yet; the consent endpoint creates the subject
    when they do.
    """
    return personalization_allowed(None, request)
