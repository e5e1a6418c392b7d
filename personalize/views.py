"""Plain Django views (no JavaScript needed); the REST API lives in ``personalize.api``.

``/personalize/consent/`` (``personalize_web:consent``): ``GET`` is the
visitor's privacy choices page, ``POST`` records a decision (the banner's form
and the page's forms post here).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from personalize.api.consent import consent_document
from personalize.consent import service
from personalize.consent.preferences import refusal_message, refusal_reason
from personalize.models.consent import ConsentSource
from personalize.templatetags.personalize_consent import preferences_context

#: Form values of ``granted`` that mean yes / no.
YES = {"1", "true", "yes", "on", "accept"}
NO = {"0", "false", "no", "off", "reject"}

#: The privacy choices page and the page shown when a decision cannot be recorded
#: (override either in your project's templates; both extend ``personalize/base.html``).
PREFERENCES_TEMPLATE = "personalize/consent_preferences.html"
REFUSED_TEMPLATE = "personalize/consent_refused.html"


def _safe_url(request: HttpRequest, candidate: str | None) -> str:
    """``candidate`` if it is a URL of this site, else ``""``."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _safe_next(request: HttpRequest) -> str:
    for candidate in (request.POST.get("next"), request.headers.get("Referer")):
        if _safe_url(request, candidate):
            return str(candidate)
    return "/"


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _error(request: HttpRequest, field: str, message: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({field: [message]}, status=400)
    return HttpResponseBadRequest(f"{field}: {message}", content_type="text/plain")


def _refused(request: HttpRequest) -> HttpResponse:
    """403 saying why the decision could not be recorded (a page, or JSON for fetch)."""
    reason = refusal_reason(request)
    message = refusal_message(reason)
    if _wants_json(request):
        return JsonResponse({"detail": message, "reason": reason}, status=403)
    return render(request, REFUSED_TEMPLATE, {
        "reason": reason,
        "message": message,
        "user_agent": request.headers.get("User-Agent", ""),
        "back_url": _safe_url(request, request.POST.get("next")),
    }, status=403)


@never_cache  # the page shows one visitor's choices
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def consent_form(request: HttpRequest) -> HttpResponse:
    """The visitor's privacy choices page (GET), or record a decision (POST).

    GET shows every purpose, its state and what turning it off erases, with a
    form per purpose; ``?next=`` (a same-site URL) adds a link back. Creates
    nothing.

    POST form fields: ``granted`` (``1``/``0``, ``accept``/``reject``),
    ``purpose`` (repeatable; every configured purpose when absent) and
    ``next`` (a same-site URL to return to; the Referer otherwise). With
    ``Accept: application/json`` (the banner's fetch) the answer is the
    visitor's consent document instead of a redirect. A request that cannot
    have a subject (a crawler) gets a 403 page saying why.
    """
    if request.method != "POST":
        back = _safe_url(request, request.GET.get("next"))
        return render(request, PREFERENCES_TEMPLATE, preferences_context(request, back))
    answer = request.POST.get("granted", "").strip().lower()
    if answer not in YES | NO:
        return _error(request, "granted", "Must be 1 (accept) or 0 (reject).")
    chosen = request.POST.getlist("purpose") or list(service.purposes())
    for purpose in chosen:
        try:
            service.validate_purpose(purpose)
        except ValueError as exc:
            return _error(request, "purpose", str(exc))
    record = service.grant_consent if answer in YES else service.revoke_consent
    try:
        for purpose in chosen:
            record(request, purpose, source=ConsentSource.BANNER)
    except service.NoSubjectError:
        return _refused(request)
    if _wants_json(request):
        return JsonResponse(consent_document(request))
    messages.success(request, gettext("Your privacy choices were saved."), fail_silently=True)
    return HttpResponseRedirect(_safe_next(request))
