"""What a visitor's privacy choices page shows: each purpose, its state, what turning it off does.

The page (``GET /personalize/consent/``) and the ``{% consent_preferences %}``
tag render :func:`preferences`; decisions go through
:func:`~personalize.consent.service.grant_consent` /
:func:`~personalize.consent.service.revoke_consent` like every other.

Labels and descriptions of the built-in purposes are translated here; a site
names its own purposes (or rewords the built-in ones) with
``PERSONALIZE["CONSENT_PURPOSE_TEXTS"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext, gettext_lazy, ngettext

from personalize.conf import personalize_settings
from personalize.consent.service import (
    PERSONALIZATION,
    SIGNAL,
    ConsentState,
    browser_signal,
    get_consent,
)
from personalize.identity import resolve_subject
from personalize.identity.bots import is_bot_request
from personalize.identity.subjects import as_http_request
from personalize.models import Event

#: The keys of an entry of ``CONSENT_PURPOSE_TEXTS``.
TEXT_KEYS = ("label", "description", "withdrawal")

#: What the built-in purposes are called and what they are for.
BUILT_IN_TEXTS: dict[str, dict[str, Any]] = {
    PERSONALIZATION: {
        "label": gettext_lazy("Personalized recommendations"),
        "description": gettext_lazy(
            "We use what you view, add to your cart, buy and rate on this site to recommend "
            "products to you."),
    },
    "analytics": {
        "label": gettext_lazy("Measurement"),
        "description": gettext_lazy(
            "We count how often recommendations are shown and used, to improve them."),
    },
}

#: Why a decision could not be recorded (``NoSubjectError``), by :func:`refusal_reason`.
CRAWLER, NO_VISITOR_COOKIE = "crawler", "no_visitor_cookie"


@dataclass(frozen=True)
class PurposeChoice:
    """One purpose as the privacy choices page shows it.

    Attributes:
        purpose: the purpose name (what the form posts).
        label: its human name.
        description: what the site does with it.
        withdrawal: what turning it off does (and erases).
        state: the current :class:`~personalize.consent.service.ConsentState`.
    """

    purpose: str
    label: str
    description: str
    withdrawal: str
    state: ConsentState

    @property
    def granted(self) -> bool:
        return self.state.granted

    @property
    def is_decided(self) -> bool:
        """Whether the visitor (or their browser) decided; otherwise the site's mode applies."""
        return self.state.is_decided

    @property
    def by_signal(self) -> bool:
        """Off because the browser sends Global Privacy Control or Do Not Track."""
        return self.state.decided_by == SIGNAL


@dataclass(frozen=True)
class Preferences:
    """Everything the privacy choices page shows.

    Attributes:
        choices: one :class:`PurposeChoice` per configured purpose, in settings order.
        signal: ``"gpc"`` or ``"dnt"`` when the browser's signal turns everything off.
        events_held: how many events are stored about the visitor.
        mode: ``CONSENT_MODE``.
        policy_version: ``CONSENT_POLICY_VERSION``.
    """

    choices: list[PurposeChoice]
    signal: str | None
    events_held: int
    mode: str
    policy_version: str

    @property
    def decided(self) -> bool:
        """Whether every purpose has been decided."""
        return all(choice.is_decided for choice in self.choices)


def purpose_texts(purpose: str) -> dict[str, str]:
    """The label, description and withdrawal text of ``purpose``, translated.

    ``CONSENT_PURPOSE_TEXTS`` wins over the built-in texts, key by key; a
    purpose without a label is named after itself.
    """
    texts = {**BUILT_IN_TEXTS.get(purpose, {}),
             **(personalize_settings.CONSENT_PURPOSE_TEXTS or {}).get(purpose, {})}
    return {
        "label": str(texts.get("label") or purpose.replace("_", " ").capitalize()),
        "description": str(texts.get("description") or ""),
        "withdrawal": str(texts.get("withdrawal") or ""),
    }


def withdrawal_effect(purpose: str, events_held: int) -> str:
    """What turning ``purpose`` off does, in the visitor's words.

    Withdrawing ``personalization`` erases (or, with ``ON_CONSENT_REVOKED =
    "anonymize"``, unlinks) the visitor's recorded events; other purposes
    erase nothing the SDK stores.
    """
    configured = purpose_texts(purpose)["withdrawal"]
    if configured:
        return configured
    if purpose != PERSONALIZATION:
        return gettext("Turning this off stops it from now on; nothing already stored is erased.")
    if personalize_settings.ON_CONSENT_REVOKED == "anonymize":
        return ngettext(
            "Turning this off stops recording what you do here and unlinks the %(count)d "
            "event recorded about you: it is kept without any link to you, for shop-wide "
            "figures such as popular products. Recommendations stop using it.",
            "Turning this off stops recording what you do here and unlinks the %(count)d "
            "events recorded about you: they are kept without any link to you, for shop-wide "
            "figures such as popular products. Recommendations stop using them.",
            events_held,
        ) % {"count": events_held}
    return ngettext(
        "Turning this off stops recording what you do here and erases the %(count)d event "
        "recorded about you (what you were shown, viewed, searched for, added to your cart, "
        "bought and rated). "
        "Recommendations stop using it.",
        "Turning this off stops recording what you do here and erases the %(count)d events "
        "recorded about you (what you were shown, viewed, searched for, added to your cart, "
        "bought and rated). "
        "Recommendations stop using them.",
        events_held,
    ) % {"count": events_held}


def events_held(request_or_subject: Any) -> int:
    """How many events are stored about the visitor (one query; creates nothing)."""
    subject = resolve_subject(request_or_subject, create=False)
    if subject is None:
        return 0
    return Event.objects.filter(subject_id=subject.pk).count()


def preferences(request_or_subject: Any) -> Preferences:
    """The privacy choices of the visitor behind a request (or of a user or subject).

    Reads the consent state of every purpose and counts the visitor's events;
    creates nothing (no subject, no cookie).
    """
    states = get_consent(request_or_subject)
    held = events_held(request_or_subject)
    choices = []
    for purpose, state in states.items():
        texts = purpose_texts(purpose)
        choices.append(PurposeChoice(
            purpose=purpose, label=texts["label"], description=texts["description"],
            withdrawal=withdrawal_effect(purpose, held), state=state,
        ))
    request = as_http_request(request_or_subject)
    return Preferences(
        choices=choices,
        signal=browser_signal(request) if request is not None else None,
        events_held=held,
        mode=str(personalize_settings.CONSENT_MODE),
        policy_version=str(personalize_settings.CONSENT_POLICY_VERSION),
    )


def refusal_reason(request: Any) -> str:
    """Why a decision from ``request`` could not be recorded (after ``NoSubjectError``).

    Returns:
        :data:`CRAWLER` when the request's User-Agent matches
        ``BOT_USER_AGENT_PATTERN``, else :data:`NO_VISITOR_COOKIE` (the site
        cannot give the visitor the cookie that would remember the decision).
    """
    return CRAWLER if is_bot_request(request) else NO_VISITOR_COOKIE


def refusal_message(reason: str) -> str:
    """The visitor-facing explanation of :func:`refusal_reason`, translated."""
    if reason == CRAWLER:
        return gettext(
            "Your browser identified itself as an automated program (a crawler, monitor or "
            "script), and this site does not remember privacy choices for those. Nothing "
            "was recorded, and nothing about this visit is used to personalize the site.")
    return gettext(
        "This site could not give your browser the cookie that remembers your choice, so "
        "nothing was recorded. Nothing about this visit is used to personalize the site.")
