"""Who a request, a user or a subject stands for.

Consent, tracking, serving and the REST API all start from "the subject behind
this request"; this layer answers it for all of them (:func:`resolve_subject`).
"""

from personalize.identity.subjects import follow_merges, subject_for_user, subject_for_visitor
from personalize.identity.visitors import (
    COOKIE_SALT,
    STATE_ATTR,
    VisitorState,
    resolve_subject,
    visitor_state,
)

__all__ = [
    "COOKIE_SALT",
    "STATE_ATTR",
    "VisitorState",
    "follow_merges",
    "resolve_subject",
    "subject_for_user",
    "subject_for_visitor",
    "visitor_state",
]
