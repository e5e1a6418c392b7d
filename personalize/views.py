"""Plain Django views (no JavaScript needed); the REST API lives in ``personalize.api``."""

from __future__ import annotations

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseRedirect,
    JsonResponse,
)
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from personalize.api.consent import consent_document
from personalize.consent import service
from personalize.models.consent import ConsentSource

#: Form values of ``granted`` that mean yes / no.
YES = {"1", "true", "yes", "on", "accept"}
NO = {"0", "false", "no", "off", "reject"}


def _safe_next(request: HttpRequest) -> str:
    for candidate in (request.POST.get("next"), request.headers.get("Referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return "/"


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _error(request: HttpRequest, field: str, message: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({field: [message]}, status=400)
    return HttpResponseBadRequest(f"{field}: {message}", content_type="text/plain")


@require_POST
@csrf_protect
def consent_form(request: HttpRequest) -> HttpResponse:
    """Record the consent banner's decision, then go back to the page (or answer JSON).

    Form fields: ``granted`` (``1``/``0``, ``accept``/``reject``), ``purpose``
    (repeatable; every configured purpose when absent) and ``next`` (a
    same-site URL to return to; the Referer otherwise). With ``Accept:
    application/json`` (the banner's fetch) the answer is the visitor's consent
    document instead of a redirect.
    """
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
    except service.NoSubjectError as exc:
        return HttpResponseForbidden(str(exc), content_type="text/plain")
    if _wants_json(request):
        return JsonResponse(consent_document(request))
    return HttpResponseRedirect(_safe_next(request))
