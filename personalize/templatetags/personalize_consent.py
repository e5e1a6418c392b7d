"""Template tags for consent: the banner, the privacy choices and the flag the tracker reads.

``{% load personalize_consent %}``, then::

    <html lang="en" {% consent_attrs %}>
    ...
    {% consent_banner policy_url="/privacy/" %}
    <a href="{% url 'personalize_web:consent' %}">Privacy choices</a>
    ...
    {% consent_preferences %}   {# the choices inline, on a page of your own #}

They read the current request (``django.template.context_processors.request``)
and degrade quietly: on any error they log and render nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django import template
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

from personalize.conf import personalize_settings
from personalize.consent import service
from personalize.consent.preferences import preferences

logger = logging.getLogger(__name__)
register = template.Library()

#: The template the banner renders (override it in your project's templates).
BANNER_TEMPLATE = "personalize/consent_banner.html"
#: The privacy choices, as the page and ``{% consent_preferences %}`` render them.
PREFERENCES_FORM_TEMPLATE = "personalize/consent_preferences_form.html"


def preferences_context(request: HttpRequest, back_url: str = "") -> dict[str, Any]:
    """The context of the privacy choices (the page's and the tag's).

    Args:
        request: the visitor's request.
        back_url: a same-site URL the page links back to ("" for none).

    Raises:
        NoReverseMatch: ``personalize.urls`` is not in the URLconf.
    """
    try:
        export_url = reverse("personalize:my-data")
    except NoReverseMatch:  # the REST API is not mounted
        export_url = ""
    return {
        "preferences": preferences(request),
        "action": reverse("personalize_web:consent"),
        "next": request.get_full_path(),
        "back_url": back_url,
        "export_url": export_url,
    }


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
        if request.path == action:  # the privacy choices page asks the same, in full
            return ""
        return render_to_string(
            template_name,
            {
                "action": action,
                "preferences_url": f"{action}?{urlencode({'next': request.get_full_path()})}",
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




@register.simple_tag(takes_context=True)
def consent_preferences(
    context: template.Context, template_name: str = PREFERENCES_FORM_TEMPLATE
) -> str:
    """The visitor's privacy choices, inline: each purpose, its state and a form to change it.

    What the page at ``personalize_web:consent`` shows, for a privacy page of
    your own. Each form posts to that URL and comes back to this page.
    Renders nothing without a request or without ``personalize.urls``.

    Args:
        context: the template context (needs ``request``).
        template_name: a different template to render.
    """
    try:
        request = context.get("request")
        if request is None:
            return ""
        return render_to_string(template_name, preferences_context(request), request=request)
    except NoReverseMatch:
        logger.warning('consent_preferences: include path("personalize/", '
                       'include("personalize.urls")) in your URLconf.')
        return ""
    except Exception:
        logger.exception("consent_preferences could not render")
        return ""
