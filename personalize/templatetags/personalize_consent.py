"""Template tags for consent: the banner and the flag the JavaScript tracker reads.

``{% load personalize_consent %}``, then::

    <html lang="en" {% consent_attrs %}>
    ...
    {% consent_banner policy_url="/privacy/" %}

Both read the current request (``django.template.context_processors.request``)
and degrade quietly: on any error they log and render nothing.
"""

from __future__ import annotations

import logging

from django import template
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString, mark_safe

from personalize.conf import personalize_settings
from personalize.consent import service

logger = logging.getLogger(__name__)
register = template.Library()

#: The template the banner renders (override it in your project's templates).
BANNER_TEMPLATE = "personalize/consent_banner.html"


def consent_attribute_name(purpose: str) -> str:
    """``data-personalize-consent`` for personalization, ``...-consent-<purpose>`` otherwise."""
    if purpose == service.PERSONALIZATION:
        return "data-personalize-consent"
    return "data-personalize-consent-" + purpose.replace("_", "-")


@register.simple_tag(takes_context=True)
def consent_attrs(context: template.Context) -> SafeString:
    """HTML attributes with the consent state, for the ``<html>`` element.

    Renders ``data-personalize-consent="granted|denied"`` (the personalization
    purpose, which ``track.js`` reads as
    ``document.documentElement.dataset.personalizeConsent``) and one
    ``data-personalize-consent-<purpose>`` attribute per other purpose.
    GPC / DNT headers count. Without a request everything is ``denied``.
    """
    try:
        request = context.get("request")
        states = service.get_consent(request) if request is not None else {}
        pairs = [
            (consent_attribute_name(purpose),
             "granted" if purpose in states and states[purpose].granted else "denied")
            for purpose in service.purposes()
        ]
        return format_html_join(" ", '{}="{}"', pairs)
    except Exception:
        logger.exception("consent_attrs could not read the consent state")
        return mark_safe('data-personalize-consent="denied"')


@register.simple_tag(takes_context=True)
def consent_banner(
    context: template.Context, policy_url: str = "", template_name: str = BANNER_TEMPLATE
) -> str:
    """A minimal consent banner: a plain form, enhanced with ``fetch`` when JavaScript runs.

    Renders nothing once the visitor has decided every purpose (explicitly, or
    by a GPC / DNT signal that the site honours), and nothing without a request.

    Args:
        context: the template context (needs ``request``).
        policy_url: link to the site's privacy policy, shown in the banner.
        template_name: a different template to render.
    """
    try:
        request = context.get("request")
        if request is None:
            return ""
        states = service.get_consent(request)
        if all(state.is_decided for state in states.values()):
            return ""
        try:
            action = reverse("personalize_web:consent")
        except NoReverseMatch:
            logger.warning(
                'consent_banner: include path("personalize/", include("personalize.urls")) '
                "in your URLconf so the banner has somewhere to post."
            )
            return ""
        return render_to_string(
            template_name,
            {
                "action": action,
                "next": request.get_full_path(),
                "policy_url": policy_url,
                "purposes": list(states),
                "mode": personalize_settings.CONSENT_MODE,
                "policy_version": personalize_settings.CONSENT_POLICY_VERSION,
            },
            request=request,
        )
    except Exception:
        logger.exception("consent_banner could not render")
        return ""


