"""Who a request, a user or a subject stands for: subject resolution and the anon -> user merge.

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

On login the anonymous subject of the browser is folded into the user's subject
(:func:`merge_subjects`); on logout the next anonymous subject starts fresh.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connections, router, transaction
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from personalize.conf import personalize_settings
from personalize.models import ConsentRecord, Event, Subject
from personalize.models.subjects import new_visitor_id
from personalize.tracking.bots import is_bot_request

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.http import HttpResponse

logger = logging.getLogger(__name__)

#: Salt of the signed visitor cookie (changing it invalidates every cookie).
COOKIE_SALT = "personalize.visitor"
#: The request attribute holding the per-request :class:`VisitorState`.
STATE_ATTR = "_personalize_visitor"
#: Longest ``merged_into`` chain followed (a chain is normally one link long).
MAX_MERGE_DEPTH = 8


# --- lookups -----------------------------------------------------------------


def subject_for_user(user: AbstractBaseUser, create: bool = True) -> Subject | None:
    """The subject of a signed-in user, created on first need.

    Args:
        user: an authenticated user instance.
        create: create the subject when the user has none yet.

    Returns:
        The user's subject, or ``None`` if there is none and ``create`` is false.
    """
    subject = _lookup("user_id", user.pk)
    if subject is None and create:
        try:
            with transaction.atomic():
                subject = Subject.objects.create(user_id=user.pk)
        except IntegrityError:  # a concurrent request created it first
            subject = Subject.objects.get(user_id=user.pk)
    return subject


def subject_for_visitor(visitor_id: str) -> Subject | None:
    """The live anonymous subject behind a visitor id (not merged, not signed in)."""
    return _lookup("visitor_id", visitor_id)


#: The fields a lookup loads; the timestamps stay deferred (loaded on access).
_LOOKUP_FIELDS = ("id", "key", "user_id", "visitor_id", "merged_into_id")


@lru_cache(maxsize=8)
def _lookup_sql(alias: str, by: str) -> str:
    meta = Subject._meta
    q = connections[alias].ops.quote_name
    column = {f.attname: str(f.column) for f in meta.concrete_fields}
    where = f"{q(column[by])} = %s"
    if by == "visitor_id":  # only a live anonymous subject answers to a cookie
        where += f" AND {q(column['user_id'])} IS NULL AND {q(column['merged_into_id'])} IS NULL"
    columns = ", ".join(q(column[name]) for name in _LOOKUP_FIELDS)
    return f"SELECT {columns} FROM {q(meta.db_table)} WHERE {where}"  # noqa: S608


def _lookup(by: str, value: Any) -> Subject | None:
    # Runs on every tracked request: plain SQL over unique columns, because
    # compiling the equivalent queryset costs more than the query itself.
    alias = router.db_for_read(Subject)
    with connections[alias].cursor() as cursor:
        cursor.execute(_lookup_sql(alias, by), [value])
        row = cursor.fetchone()
    return Subject.from_db(alias, _LOOKUP_FIELDS, row) if row else None


def follow_merges(subject: Subject) -> Subject:
    """The subject whose history now holds ``subject``'s (itself unless it was merged)."""
    depth = 0
    while subject.merged_into_id is not None and depth < MAX_MERGE_DEPTH:
        target = Subject.objects.filter(pk=subject.merged_into_id).first()
        if target is None:
            break
        subject, depth = target, depth + 1
    return subject


def _as_http_request(obj: Any) -> HttpRequest | None:
    # A DRF Request wraps the HttpRequest; both carry the same state attribute.
    inner = getattr(obj, "_request", obj)
    return inner if isinstance(inner, HttpRequest) else None


def _is_user(obj: Any) -> bool:
    return isinstance(obj, AnonymousUser) or (
        hasattr(obj, "is_authenticated") and hasattr(obj, "pk") and hasattr(obj, "get_username")
    )


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
    request = _as_http_request(request_or_subject)
    if request is not None:
        return visitor_state(request).get(create=create)
    if _is_user(request_or_subject):
        if not request_or_subject.is_authenticated:
            return None
        return subject_for_user(request_or_subject, create=create)
    raise TypeError(
        "resolve_subject() takes a Subject, a user or a request, "
        f"not {type(request_or_subject).__name__}."
    )


# --- per-request state -------------------------------------------------------


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
        return self._anonymous(create)

    def _anonymous(self, create: bool) -> Subject | None:
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


# --- login / logout ----------------------------------------------------------


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
    from personalize.tracking.announce import announce_events

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
        from personalize.consent import service as consent_service
    except ImportError:
        return
    hook = getattr(consent_service, "invalidate_consent_cache", None)
    if hook is not None:
        try:
            hook(subject)
        except Exception:
            logger.exception("Could not clear the consent cache of subject %s", subject.pk)


def on_user_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: the browser's anonymous history joins the user's."""
    if request is None or getattr(user, "pk", None) is None:
        return
    state = getattr(request, STATE_ATTR, None)
    anon: Subject | None = None
    if state is not None and state._anon_looked_up:
        anon = state._anon_subject
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
