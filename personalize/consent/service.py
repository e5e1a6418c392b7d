"""Consent: purposes, the append-only ledger, browser signals, and the cached current state.

The current state of a purpose for a subject is, in order:

1. ``signal``: with a request given, ``Sec-GPC: 1`` (unless ``HONOR_GPC`` is
   off) or ``DNT: 1`` (unless ``HONOR_DNT`` is off) counts as withdrawal of
   every purpose, for that request, whatever the ledger says. Signals are read,
   never written to the ledger (they arrive with every request).
2. ``explicit``: the latest :class:`~personalize.models.ConsentRecord` of the
   subject for the purpose (with ``CONSENT_REASK_ON_POLICY_CHANGE``, a grant
   given under another policy version no longer counts).
3. ``default``: ``CONSENT_MODE`` ``"opt-in"`` means not granted, ``"opt-out"``
   means granted.

:func:`has_consent` runs on every tracked event and every recommendation, so
the ledger's latest decisions per subject are cached in
``PERSONALIZE['CACHE_ALIAS']`` and the entry is deleted on every ledger write
(immediately and again after the transaction commits).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import router, transaction
from django.http import HttpRequest

from personalize.backends.cache import personalize_cache, warn_unreachable
from personalize.backends.database import store_for
from personalize.conf import personalize_settings
from personalize.consent.cache import consent_cache_key
from personalize.consent.withdrawal import withdraw_events
from personalize.identity import follow_merges, resolve_subject
from personalize.identity.subjects import as_http_request
from personalize.models import ConsentRecord, Subject
from personalize.models.consent import ConsentSource

logger = logging.getLogger(__name__)

#: The purpose that gates tracking and personalized recommendations.
PERSONALIZATION = "personalization"
#: The purpose that gates exposure logging and taking part in experiments.
ANALYTICS = "analytics"
#: Purposes every site must offer (system check personalize.E013).
REQUIRED_PURPOSES = (PERSONALIZATION, ANALYTICS)

#: How a state was decided.
EXPLICIT, DEFAULT, SIGNAL = "explicit", "default", "signal"

# Cached per subject: {purpose: (granted, created_at, policy_version, source)}.
_Latest = dict[str, tuple[bool, datetime, str, str]]


class NoSubjectError(LookupError):
    """A consent decision was given for a request that has no subject and cannot get one.

    Happens for crawlers and without ``VisitorMiddleware`` (nothing could set the
    visitor cookie that remembers the decision).
    """


@dataclass(frozen=True)
class ConsentState:
    """The current consent of one subject for one purpose.

    Attributes:
        purpose: the purpose name.
        granted: whether the purpose is allowed now.
        decided_by: ``"explicit"`` (a ledger record), ``"default"`` (the site's
            ``CONSENT_MODE``) or ``"signal"`` (a GPC / DNT header on the request).
        since: when the explicit decision was recorded (``None`` otherwise).
        policy_version: the policy version of the explicit decision.
        source: where the explicit decision came from (``banner``, ``api``, ...).
    """

    purpose: str
    granted: bool
    decided_by: str
    since: datetime | None = None
    policy_version: str | None = None
    source: str | None = None

    @property
    def is_decided(self) -> bool:
        """Whether the visitor (or their browser) has decided, so a banner need not ask."""
        return self.decided_by != DEFAULT

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``since`` as ISO 8601)."""
        return {
            "purpose": self.purpose,
            "granted": self.granted,
            "decided_by": self.decided_by,
            "since": self.since.isoformat() if self.since else None,
            "policy_version": self.policy_version,
            "source": self.source,
        }


# --- purposes and signals ------------------------------------------------------


def purposes() -> tuple[str, ...]:
    """The configured purposes, in settings order."""
    return tuple(personalize_settings.CONSENT_PURPOSES)


def validate_purpose(purpose: str) -> str:
    """Return ``purpose`` if configured.

    Raises:
        ValueError: naming the unknown purpose and the valid ones.
    """
    configured = purposes()
    if purpose not in configured:
        raise ValueError(
            f"Unknown consent purpose {purpose!r}; configured purposes: {', '.join(configured)}."
        )
    return purpose


def browser_signal(request: Any) -> str | None:
    """The privacy signal on a request that counts as withdrawal, if any.

    Args:
        request: an ``HttpRequest`` or DRF ``Request`` (anything with ``META``
            or ``headers``).

    Returns:
        ``"gpc"`` for ``Sec-GPC: 1`` (when ``HONOR_GPC``), ``"dnt"`` for
        ``DNT: 1`` (when ``HONOR_DNT``), else ``None``.
    """
    # META as-is where there is one: ``request.headers`` would first copy
    # every header of the request into a new mapping.
    meta = getattr(request, "META", None)
    if meta is not None:
        gpc, dnt = meta.get("HTTP_SEC_GPC", ""), meta.get("HTTP_DNT", "")
    else:
        headers = getattr(request, "headers", None)
        if headers is None:
            return None
        gpc, dnt = headers.get("Sec-GPC", ""), headers.get("DNT", "")
    s = personalize_settings
    if s.HONOR_GPC and gpc.strip() == "1":
        return "gpc"
    if s.HONOR_DNT and dnt.strip() == "1":
        return "dnt"
    return None


def _default_granted() -> bool:
    return bool(personalize_settings.CONSENT_MODE == "opt-out")


# --- the cached current state --------------------------------------------------


def _load_latest(subject_id: int) -> _Latest:
    rows = (
        ConsentRecord.objects.filter(subject_id=subject_id)
        .order_by("purpose", "-created_at", "-id")
        .values_list("purpose", "granted", "created_at", "policy_version", "source")
    )
    latest: _Latest = {}
    for purpose, granted, created_at, version, source in rows:
        latest.setdefault(purpose, (granted, created_at, version, source))
    return latest


def _latest(subject_id: int) -> _Latest:
    """The latest ledger decision per purpose, from the cache or the database."""
    key = consent_cache_key(subject_id)
    try:
        cache = personalize_cache()
        cached = cache.get(key)
    except Exception as exc:  # a cache outage must not break a page: read the ledger
        warn_unreachable("reading consent from the ledger", exc)
        return _load_latest(subject_id)
    if cached is not None:
        return dict(cached)
    return _load_and_cache(subject_id, cache)


def _load_and_cache(subject_id: int, cache: Any) -> _Latest:
    latest = _load_latest(subject_id)
    try:
        cache.set(consent_cache_key(subject_id), latest, personalize_settings.CONSENT_CACHE_TTL)
    except Exception as exc:
        warn_unreachable("consent state not cached", exc)
    return latest


def invalidate_consent_cache(subject: Subject | int) -> None:
    """Drop the cached consent state of a subject (after any ledger write).

    Deleted at once and again when the surrounding transaction commits, so a
    concurrent reader cannot re-cache the state from before the write.
    """
    subject_id = subject.pk if isinstance(subject, Subject) else int(subject)
    key = consent_cache_key(subject_id)

    def _delete() -> None:
        try:
            personalize_cache().delete(key)
        except Exception:
            logger.warning("Could not clear consent cache of subject %s", subject_id, exc_info=True)

    _delete()
    transaction.on_commit(_delete)


def _state(purpose: str, latest: _Latest) -> ConsentState:
    decision = latest.get(purpose)
    if decision is not None:
        granted, since, version, source = decision
        stale = (
            granted
            and personalize_settings.CONSENT_REASK_ON_POLICY_CHANGE
            and version != personalize_settings.CONSENT_POLICY_VERSION
        )
        if not stale:
            return ConsentState(purpose, granted, EXPLICIT, since, version, source)
    return ConsentState(purpose, _default_granted(), DEFAULT)


def _subject_id(subject: Any) -> int | None:
    if subject is None:
        return None
    if isinstance(subject, Subject):
        if subject.merged_into_id is not None:  # decisions live on the surviving subject
            return follow_merges(subject).pk
        return subject.pk
    if isinstance(subject, int) and not isinstance(subject, bool):
        return subject
    resolved = resolve_subject(subject, create=False)
    return resolved.pk if resolved is not None else None


def has_consent(
    subject: Subject | int | Any | None,
    purpose: str = PERSONALIZATION,
    request: HttpRequest | Any | None = None,
) -> bool:
    """Whether ``purpose`` is allowed for ``subject`` now. Cheap: one cache read.

    Tracking calls this before storing any event, serving before personalizing.

    Args:
        subject: a :class:`Subject`, its pk, ``None`` (a visitor without a
            subject yet: the ``CONSENT_MODE`` default applies), or anything
            :func:`~personalize.identity.resolve_subject` accepts (a
            request or a user; nothing is created).
        purpose: a configured purpose.
        request: the current request, to honour ``Sec-GPC`` / ``DNT`` headers.
            When ``subject`` is itself a request it is used for this too.

    Returns:
        ``True`` if allowed.

    Raises:
        ValueError: for an unknown purpose.
    """
    validate_purpose(purpose)
    if request is None:
        request = as_http_request(subject)
    if request is not None and browser_signal(request):
        return False
    subject_id = _subject_id(subject)
    if subject_id is None:
        return _default_granted()
    return _state(purpose, _latest(subject_id)).granted


def consents_reading(
    subject_id: int,
    purposes: Sequence[str],
    request: HttpRequest | Any | None,
    also: Sequence[str],
) -> tuple[dict[str, bool], dict[str, Any] | None]:
    """:func:`has_consent` for a subject pk and purposes, reading other keys in the same trip.

    Serving reads a block's cache keys with it, so a computed block pays no
    second round trip for ``personalization`` (may the block use the
    subject's history) and ``analytics`` (may its exposure be logged): both
    come from the one cached ledger state.

    Args:
        subject_id: a live subject's pk (merges are not followed).
        purposes: configured purposes.
        request: the current request, for the GPC / DNT headers.
        also: more keys of the personalize cache to read.

    Returns:
        ``({purpose: allowed}, values)``: ``values`` maps the keys of ``also``
        that were found to their values; ``None`` if the cache could not be
        read (the decisions then came from the ledger).

    Raises:
        ValueError: for an unknown purpose.
    """
    for purpose in purposes:
        validate_purpose(purpose)
    key = consent_cache_key(subject_id)
    try:
        cache = personalize_cache()
        values = cache.get_many([key, *also])
    except Exception as exc:
        warn_unreachable("reading consent from the ledger", exc)
        return {p: has_consent(subject_id, p, request) for p in purposes}, None
    cached = values.pop(key, None)
    latest = dict(cached) if cached is not None else _load_and_cache(subject_id, cache)
    if request is not None and browser_signal(request):
        return dict.fromkeys(purposes, False), values
    return {p: _state(p, latest).granted for p in purposes}, values


def _load_latest_many(subject_ids: Iterable[int]) -> dict[int, _Latest]:
    """:func:`_load_latest` for many subjects: one ledger query per 500."""
    missing = sorted(subject_ids)
    loaded: dict[int, _Latest] = {pk: {} for pk in missing}
    for start in range(0, len(missing), 500):
        rows = (
            ConsentRecord.objects.filter(subject_id__in=missing[start:start + 500])
            .order_by("subject_id", "purpose", "-created_at", "-id")
            .values_list("subject_id", "purpose", "granted", "created_at", "policy_version",
                         "source")
        )
        for subject_id, purpose, granted, created_at, version, source in rows:
            loaded[subject_id].setdefault(purpose, (granted, created_at, version, source))
    return loaded


def _latest_many(subject_ids: set[int]) -> dict[int, _Latest]:
    """:func:`_latest` for many subjects: one ``get_many``, one query for the misses."""
    keys = {consent_cache_key(pk): pk for pk in subject_ids}
    try:
        cache = personalize_cache()
        cached = cache.get_many(list(keys))
    except Exception as exc:
        warn_unreachable("reading consent from the ledger", exc)
        cache, cached = None, {}
    found: dict[int, _Latest] = {keys[key]: dict(value) for key, value in cached.items()}
    loaded = _load_latest_many(subject_ids - found.keys())
    if loaded and cache is not None:
        try:
            cache.set_many(
                {consent_cache_key(pk): value for pk, value in loaded.items()},
                personalize_settings.CONSENT_CACHE_TTL,
            )
        except Exception as exc:
            warn_unreachable("consent state not cached", exc)
    return {**found, **loaded}


def has_consent_many(
    subject_ids: Iterable[int],
    purpose: str = PERSONALIZATION,
    request: HttpRequest | Any | None = None,
) -> dict[int, bool]:
    """:func:`has_consent` for many subjects at once (batch ingestion).

    One cache ``get_many`` and, for subjects not cached, one ledger query per
    500 subjects. Subject pks are taken as given (merges are not followed).

    Args:
        subject_ids: Subject pks.
        purpose: a configured purpose.
        request: the current request, whose GPC / DNT headers count for all.

    Returns:
        ``{subject pk: allowed}``.

    Raises:
        ValueError: for an unknown purpose.
    """
    validate_purpose(purpose)
    ids = {int(pk) for pk in subject_ids}
    if not ids:
        return {}
    if request is not None and browser_signal(request):
        return dict.fromkeys(ids, False)
    latest = _latest_many(ids)
    return {pk: _state(purpose, latest[pk]).granted for pk in ids}


def ledger_consent_many(
    subject_ids: Iterable[int], purpose: str = PERSONALIZATION
) -> dict[int, bool]:
    """:func:`has_consent_many` from the ledger, not the cache, and without request signals.

    For writers holding the subjects' row locks: the cache may not show a withdrawal yet.
    """
    validate_purpose(purpose)
    latest = _load_latest_many({int(pk) for pk in subject_ids})
    return {pk: _state(purpose, decisions).granted for pk, decisions in latest.items()}


def get_consent(request_or_subject: Any) -> dict[str, ConsentState]:
    """The current state of every configured purpose.

    Args:
        request_or_subject: a request (its GPC / DNT headers count), a user, a
            :class:`Subject`, its pk or ``None``. Never creates a subject.

    Returns:
        ``{purpose: ConsentState}`` in settings order.
    """
    request = as_http_request(request_or_subject)
    signal = browser_signal(request) if request is not None else None
    subject_id = _subject_id(request_or_subject)
    latest = _latest(subject_id) if subject_id is not None else {}
    states: dict[str, ConsentState] = {}
    for purpose in purposes():
        state = _state(purpose, latest)
        if signal:
            state = ConsentState(purpose, False, SIGNAL, source=signal)
        states[purpose] = state
    return states


# --- recording decisions -------------------------------------------------------


def _subject_for_write(request_or_subject: Any) -> Subject:
    if isinstance(request_or_subject, Subject):
        subject: Subject | None = request_or_subject
        if request_or_subject.merged_into_id is not None:
            subject = follow_merges(request_or_subject)
    else:
        subject = resolve_subject(request_or_subject, create=True)
    if subject is None:
        raise NoSubjectError(
            "No subject to record consent for: the request is from a crawler, is "
            "anonymous without VisitorMiddleware, or the user is not signed in."
        )
    return subject


def _record(
    request_or_subject: Any,
    purpose: str,
    granted: bool,
    source: str,
    policy_version: str | None,
) -> ConsentState:
    validate_purpose(purpose)
    if source not in ConsentSource.values:
        raise ValueError(
            f"Unknown consent source {source!r}; use one of: {', '.join(ConsentSource.values)}."
        )
    version = str(policy_version or personalize_settings.CONSENT_POLICY_VERSION)
    if len(version) > 32:
        raise ValueError(f"Policy version {version!r} is longer than 32 characters.")
    subject = _subject_for_write(request_or_subject)
    alias = router.db_for_write(ConsentRecord)
    with transaction.atomic(using=alias):
        # Event writers hold it shared, wait for this, then read the ledger.
        store_for(alias).lock_subjects([subject.pk], exclusive=True)
        record = ConsentRecord.objects.create(
            subject=subject, purpose=purpose, granted=granted,
            policy_version=version, source=source,
        )
        invalidate_consent_cache(subject)
        if not granted and purpose == PERSONALIZATION:
            withdraw_events(subject)
    return ConsentState(purpose, granted, EXPLICIT, record.created_at, version, source)


def grant_consent(
    request_or_subject: Any,
    purpose: str = PERSONALIZATION,
    *,
    source: str = ConsentSource.SERVER,
    policy_version: str | None = None,
) -> ConsentState:
    """Record that the subject allows ``purpose`` (appends to the ledger).

    Args:
        request_or_subject: a request (the visitor's subject is created if
            needed, which sets the visitor cookie), a user or a :class:`Subject`.
        purpose: a configured purpose.
        source: where the decision was made: ``banner``, ``api``, ``server``,
            ``signal`` or ``admin``.
        policy_version: the policy the visitor agreed to; defaults to
            ``CONSENT_POLICY_VERSION``.

    Returns:
        The new explicit state. A GPC / DNT header on a later request still
        counts as withdrawal for that request (see :func:`has_consent`).

    Raises:
        ValueError: unknown purpose or source, or a policy version over 32 characters.
        NoSubjectError: the request has no subject and cannot get one.
    """
    return _record(request_or_subject, purpose, True, str(source), policy_version)


def revoke_consent(
    request_or_subject: Any,
    purpose: str = PERSONALIZATION,
    *,
    source: str = ConsentSource.SERVER,
    policy_version: str | None = None,
) -> ConsentState:
    """Record that the subject withdraws ``purpose`` (appends to the ledger).

    Withdrawing ``personalization`` also erases or anonymizes the subject's
    events, per ``ON_CONSENT_REVOKED``, in the same transaction, and sends
    ``subject_erased`` (``reason="consent_revoked"``) after commit so serving
    and loaded artifacts forget the subject's vector and cached blocks.

    Args and raises as :func:`grant_consent`.
    """
    return _record(request_or_subject, purpose, False, str(source), policy_version)
