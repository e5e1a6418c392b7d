"""System checks for tracking settings (registered in ``personalize.checks``).

personalize.E030
    ``BOT_USER_AGENT_PATTERN`` is not a valid regular expression, or
    ``BOT_USER_AGENT_LIST`` is not ``True`` or ``False``.
personalize.E031
    ``VISITOR_COOKIE_SAMESITE`` is not ``"Lax"``, ``"Strict"`` or ``"None"``, or
    is ``"None"`` without ``VISITOR_COOKIE_SECURE`` (browsers drop such cookies).
personalize.E032
    An entry of ``SERVER_AUTHENTICATION_CLASSES`` cannot be imported or is not a
    DRF authentication class.
personalize.E033
    ``RATING_RANGE`` is not ``(low, high)`` with ``low < high``, or a size or time
    limit (``MAX_DWELL_SECONDS``, ``MAX_BODY_BYTES``, ``MAX_CONTEXT_BYTES``,
    ``TIMESTAMP_SKEW_SECONDS``) is not a positive number.
personalize.E047
    ``HISTORY_HALF_LIFE_HOURS`` is not a dict (or ``None``) of configured event
    types to a number of hours > 0 or ``None``.
personalize.W030
    ``VisitorMiddleware`` is not in ``MIDDLEWARE``: anonymous visitors cannot be
    tracked or personalized.
personalize.W033
    Events are written to an SQLite file without
    ``OPTIONS["transaction_mode"] = "IMMEDIATE"``: two requests storing events at
    once can fail with "database is locked".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from rest_framework.authentication import BaseAuthentication

from personalize.conf import class_list_errors, personalize_settings
from personalize.models import Event

MIDDLEWARE_PATH = "personalize.tracking.middleware.VisitorMiddleware"
SAMESITE_VALUES = ("Lax", "Strict", "None")
POSITIVE_LIMITS = (
    "MAX_DWELL_SECONDS", "MAX_BODY_BYTES", "MAX_CONTEXT_BYTES", "TIMESTAMP_SKEW_SECONDS"
)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def tracking_checks() -> list[CheckMessage]:
    """All tracking configuration errors and warnings."""
    s = personalize_settings
    errors: list[CheckMessage] = []
    try:
        re.compile(s.BOT_USER_AGENT_PATTERN or "")
    except (re.error, TypeError) as exc:
        errors.append(Error(
            f"PERSONALIZE['BOT_USER_AGENT_PATTERN'] is not a valid regular expression: {exc}.",
            hint="Fix the pattern; it is matched case-insensitively with re.search().",
            obj="PERSONALIZE['BOT_USER_AGENT_PATTERN']", id="personalize.E030",
        ))
    if not isinstance(s.BOT_USER_AGENT_LIST, bool):
        errors.append(Error(
            f"PERSONALIZE['BOT_USER_AGENT_LIST'] is {s.BOT_USER_AGENT_LIST!r}.",
            hint="Use True (match the crawler-user-agents list too) or False (only "
                 "BOT_USER_AGENT_PATTERN).",
            obj="PERSONALIZE['BOT_USER_AGENT_LIST']", id="personalize.E030",
        ))
    samesite = s.VISITOR_COOKIE_SAMESITE
    if samesite not in SAMESITE_VALUES:
        errors.append(Error(
            f"PERSONALIZE['VISITOR_COOKIE_SAMESITE'] is {samesite!r}.",
            hint="Use 'Lax' (the default), 'Strict' or 'None'.",
            obj="PERSONALIZE['VISITOR_COOKIE_SAMESITE']", id="personalize.E031",
        ))
    elif samesite == "None" and not s.VISITOR_COOKIE_SECURE:
        errors.append(Error(
            "PERSONALIZE['VISITOR_COOKIE_SAMESITE'] is 'None' but VISITOR_COOKIE_SECURE is off.",
            hint="Browsers reject SameSite=None cookies that are not Secure; "
                 "set VISITOR_COOKIE_SECURE = True (HTTPS) or use 'Lax'.",
            obj="PERSONALIZE['VISITOR_COOKIE_SAMESITE']", id="personalize.E031",
        ))
    errors.extend(_authentication_errors())
    low_high = s.RATING_RANGE
    if not (
        isinstance(low_high, list | tuple) and len(low_high) == 2
        and all(_is_number(v) for v in low_high) and low_high[0] < low_high[1]
    ):
        errors.append(Error(
            f"PERSONALIZE['RATING_RANGE'] is {low_high!r}.",
            hint="Use a (low, high) pair of numbers with low < high, e.g. (0.5, 5.0).",
            obj="PERSONALIZE['RATING_RANGE']", id="personalize.E033",
        ))
    for key in POSITIVE_LIMITS:
        value = getattr(s, key)
        if not _is_number(value) or value <= 0:
            errors.append(Error(
                f"PERSONALIZE[{key!r}] is {value!r}.",
                hint="Use a positive number.",
                obj=f"PERSONALIZE[{key!r}]", id="personalize.E033",
            ))
    errors += _half_life_errors(s.HISTORY_HALF_LIFE_HOURS, s.event_weights)
    if MIDDLEWARE_PATH not in (getattr(settings, "MIDDLEWARE", None) or []):
        errors.append(Warning(
            "VisitorMiddleware is not installed: anonymous visitors get no subject, "
            "so they can be neither tracked nor personalized.",
            hint=f"Add {MIDDLEWARE_PATH!r} to MIDDLEWARE after AuthenticationMiddleware.",
            obj="settings.MIDDLEWARE", id="personalize.W030",
        ))
    from django.db import router


    alias = router.db_for_write(Event)
    errors += sqlite_lock_warnings(alias, settings.DATABASES.get(alias, {}))
    return errors


def sqlite_lock_warnings(alias: str, database: Mapping[str, Any]) -> list[CheckMessage]:
    """personalize.W033 for the events' database ``alias`` configured as ``database``.

    Storing a batch of events reads (the ids already stored) and then writes in
    one transaction. SQLite does not wait when such a transaction needs the write
    lock another connection holds: it fails at once, whatever the ``timeout``.
    ``BEGIN IMMEDIATE`` takes the lock first, where the timeout applies. An
    in-memory database has one connection and cannot contend.
    """
    if not str(database.get("ENGINE", "")).endswith("sqlite3"):
        return []
    name = str(database.get("NAME", ""))
    if name in ("", ":memory:") or name.startswith("file::memory:") or "mode=memory" in name:
        return []
    options = database.get("OPTIONS") or {}
    if str(options.get("transaction_mode", "")).upper() == "IMMEDIATE":
        return []
    return [Warning(
        f"DATABASES[{alias!r}] is SQLite without OPTIONS['transaction_mode'] = 'IMMEDIATE': "
        "two requests storing events at once can fail with 'database is locked' "
        "(the events endpoint answers 503 and a browser beacon's events are lost).",
        hint=f"Set DATABASES[{alias!r}]['OPTIONS'] = {{'transaction_mode': 'IMMEDIATE', "
             "'init_command': 'PRAGMA journal_mode=WAL;'}, or use PostgreSQL.",
        obj=f"settings.DATABASES[{alias!r}]", id="personalize.W033",
    )]


def _half_life_errors(value: Any, known: Mapping[str, Any]) -> list[CheckMessage]:
    """personalize.E047: ``HISTORY_HALF_LIFE_HOURS`` names known types, each with hours > 0."""
    obj = "PERSONALIZE['HISTORY_HALF_LIFE_HOURS']"
    hint = ('Map event types to hours, e.g. {"view": 12, "purchase": 24}; None (or a type '
            "left out) keeps an event's full weight, and {} switches the decay off.")
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [Error(f"{obj} is {value!r}, not a dict.", hint=hint, obj=obj,
                      id="personalize.E047")]
    errors: list[CheckMessage] = []
    for kind, hours in value.items():
        if kind not in known:
            errors.append(Error(
                f"{obj} names {kind!r}, which is not a configured event type.",
                hint=f"Use types of EVENT_TYPES / EXTRA_EVENT_TYPES: {', '.join(sorted(known))}.",
                obj=obj, id="personalize.E047"))
        elif hours is not None and (not _is_number(hours) or not hours > 0):
            errors.append(Error(f"{obj}[{kind!r}] is {hours!r}.", hint=hint, obj=obj,
                                id="personalize.E047"))
    return errors


def _authentication_errors() -> list[CheckMessage]:
    return class_list_errors(
        "SERVER_AUTHENTICATION_CLASSES", BaseAuthentication,
        kind="server authentication class", check_id="personalize.E032",
        example="['rest_framework.authentication.TokenAuthentication']",
    )
