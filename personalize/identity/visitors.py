"""The visitor behind a request: the signed visitor cookie and the per-request state.

Everything that needs "the person behind this request" (tracking, consent,
serving, the REST API) calls :func:`resolve_subject`. It accepts a
:class:`~personalize.models.Subject`, a user, or a request:

* a request carries a :class:`VisitorState` put there by
  :class:`personalize.tracking.middleware.VisitorMiddleware`; the state looks the
  subject up on first use (signed-in user first, then the visitor cookie) and
  remembers it for the rest of the request, so a request that never asks costs
  no query;
* an anonymous visitor's Subject is created only when something needs it with
  ``create=True``, and the middleware then sets the visitor cookie. Crawlers
  never get one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from personalize.conf import personalize_settings
from personalize.identity.bots import is_bot_request
from personalize.identity.subjects import (
    as_http_request,
    follow_merges,
    is_user,
    subject_for_user,
    subject_for_visitor,
)
from personalize.models import Subject
from personalize.models.subjects import new_visitor_id

if TYPE_CHECKING:
    from django.http import HttpResponse

#: Salt of the signed visitor cookie (changing it invalidates every cookie).
COOKIE_SALT = "personalize.visitor"
#: The request attribute holding the per-request :class:`VisitorState`.
STATE_ATTR = "_personalize_visitor"


def resolve_subject(request_or_subject: Any, create: bool = True) -> Subject | None:
    """The Subject a request, a user or a subject stands for.

    Args:
        request_or_subject: a :class:`Subject` (a merged one resolves to the
            subject it was merged into), a user (``AnonymousUser`` gives
            ``None``), or an ``HttpRequest`` / DRF ``Request``. For a request the
            order is: ``request.personalize_subject`` state set by
            ``VisitorMiddleware``, then the authenticated user's subject, then
            the anonymous visitor's subject from the signed visitor cookie.
        create: create a missing subject. Pass ``False`` when you only read
            (serving a block, checking consent) so that no row and no cookie
            appear for a visitor who has not been tracked yet. Without the
            middleware a new anonymous subject cannot be created (nothing could
            set its cookie), and crawlers never get one.

    Returns:
        The subject, or ``None`` when there is none (and none may be created).

    Raises:
        TypeError: for any other kind of argument.
    """
    if request_or_subject is None:
        return None
    if isinstance(request_or_subject, Subject):
        if request_or_subject.merged_into_id is not None:
            return follow_merges(request_or_subject)
        return request_or_subject
    request = as_http_request(request_or_subject)
    if request is not None:
        return visitor_state(request).get(create=create)
    if is_user(request_or_subject):
        if not request_or_subject.is_authenticated:
            return None
        return subject_for_user(request_or_subject, create=create)
    raise TypeError(
        "resolve_subject() takes a Subject, a user or a request, "
        f"not {type(request_or_subject).__name__}."
    )


def read_visitor_cookie(request: HttpRequest) -> str | None:
    """The visitor id from the signed cookie, or ``None`` if absent, tampered or expired."""
    name = personalize_settings.VISITOR_COOKIE_NAME
    if name not in request.COOKIES:
        return None
    value = request.get_signed_cookie(
        name, default=None, salt=COOKIE_SALT, max_age=personalize_settings.VISITOR_COOKIE_AGE
    )
    # Visitor ids are short URL-safe tokens; anything else was not minted here.
    if not value or len(value) > 64:
        return None
    return value


def cookie_needs_refresh(request: HttpRequest) -> bool:
    """Whether the (valid) visitor cookie is past half its age.

    Re-issued then, so an active visitor keeps their id past the first
    ``VISITOR_COOKIE_AGE``.
    """
    s = personalize_settings
    young = request.get_signed_cookie(
        s.VISITOR_COOKIE_NAME, default=None, salt=COOKIE_SALT, max_age=s.VISITOR_COOKIE_AGE / 2
    )
    return young is None and read_visitor_cookie(request) is not None


class VisitorState:
    """What one request knows about its subject; created by the middleware.

    Resolution is lazy and remembered: the signed-in user's subject is cached per
    user (a login or logout in the middle of the request switches it), the
    anonymous subject once per request.
    """

    def __init__(self, request: HttpRequest, *, with_middleware: bool = True) -> None:
        self.request = request
        self.with_middleware = with_middleware
        self._user_key: Any = None
        self._user_subject: Subject | None = None
        self._anon_looked_up = False
        self._anon_subject: Subject | None = None
        self._cookie_read = False
        self._visitor_id: str | None = None
        self._is_bot: bool | None = None
        #: A new visitor id to set on the response, or "" to delete the cookie.
        self.cookie_action: str | None = None

    @property
    def is_bot(self) -> bool:
        if self._is_bot is None:
            self._is_bot = is_bot_request(self.request)
        return self._is_bot

    @property
    def visitor_id(self) -> str | None:
        if not self._cookie_read:
            self._visitor_id = read_visitor_cookie(self.request)
            self._cookie_read = True
        return self._visitor_id

    def get(self, create: bool = True) -> Subject | None:
        """The request's subject (see :func:`resolve_subject`)."""
        user = getattr(self.request, "user", None)
        if user is not None and user.is_authenticated:
            if self._user_key != user.pk or (self._user_subject is None and create):
                self._user_key = user.pk
                self._user_subject = subject_for_user(user, create=create)
            return self._user_subject
        return self.anonymous(create)

    def anonymous(self, create: bool = False) -> Subject | None:
        """The visitor cookie's anonymous subject, whoever is signed in (looked up once)."""
        if not self._anon_looked_up:
            self._anon_looked_up = True
            vid = self.visitor_id
            self._anon_subject = subject_for_visitor(vid) if vid else None
        if self._anon_subject is None and create and self.with_middleware and not self.is_bot:
            # A fresh id even when the cookie named an erased or merged subject:
            # a new anonymous subject must not be linkable to the old one.
            self._anon_subject = Subject.objects.create(visitor_id=new_visitor_id())
            self.cookie_action = self._anon_subject.visitor_id
        return self._anon_subject

    def attach(self) -> None:
        """Put this state and a fresh lazy ``request.personalize_subject`` on the request."""
        setattr(self.request, STATE_ATTR, self)
        self.request.personalize_subject = SimpleLazyObject(  # type: ignore[attr-defined]
            lambda: self.get(create=True)
        )

    def forget_resolution(self) -> None:
        """Resolve the subject again on next use (it was found stale); the cookie stays."""
        self._user_key = None
        self._user_subject = None
        self._anon_looked_up = False
        self._anon_subject = None
        if self.with_middleware:  # the lazy object caches its first answer
            self.attach()

    def forget(self) -> None:
        """Drop what this request knew (login/logout): the next access resolves again.

        The incoming visitor cookie is ignored from now on and deleted on the
        response unless a new anonymous subject is created before it is sent.
        """
        self._user_key = None
        self._user_subject = None
        self._anon_looked_up = False
        self._anon_subject = None
        self._cookie_read = True
        self._visitor_id = None
        if personalize_settings.VISITOR_COOKIE_NAME in self.request.COOKIES:
            self.cookie_action = ""
        elif self.cookie_action:
            self.cookie_action = None
        if self.with_middleware:  # the lazy object caches its first answer
            self.attach()

    def apply_cookie(self, response: HttpResponse) -> None:
        """Set, refresh or delete the visitor cookie on the response as needed."""
        s = personalize_settings
        action = self.cookie_action
        if (
            action is None
            and self._anon_subject is not None
            and self._cookie_read
            and self._anon_subject.visitor_id == self._visitor_id
            and cookie_needs_refresh(self.request)
        ):
            action = self._visitor_id
        if action is None:
            return
        if action == "":
            response.delete_cookie(s.VISITOR_COOKIE_NAME, samesite=s.VISITOR_COOKIE_SAMESITE)
            return
        response.set_signed_cookie(
            s.VISITOR_COOKIE_NAME,
            action,
            salt=COOKIE_SALT,
            max_age=s.VISITOR_COOKIE_AGE,
            secure=s.VISITOR_COOKIE_SECURE,
            httponly=True,
            samesite=s.VISITOR_COOKIE_SAMESITE,
        )


def visitor_state(request: HttpRequest) -> VisitorState:
    """The request's :class:`VisitorState` (a read-only one without the middleware)."""
    state = getattr(request, STATE_ATTR, None)
    if state is None:
        state = VisitorState(request, with_middleware=False)
        setattr(request, STATE_ATTR, state)
    return state
