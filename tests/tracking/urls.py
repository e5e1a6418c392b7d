"""Small views that exercise the visitor middleware and track() in tests and benchmarks."""

from django.contrib.auth import get_user_model, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path

from personalize.api.events import EventIngestView
from personalize.identity import resolve_subject
from personalize.models import Item
from personalize.tracking.service import track


def csrf(request: HttpRequest) -> HttpResponse:
    return HttpResponse(get_token(request))


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def subject(request: HttpRequest) -> JsonResponse:
    s = request.personalize_subject
    return JsonResponse({"key": s.key if s else None, "pk": s.pk if s else None})


def peek(request: HttpRequest) -> JsonResponse:
    s = resolve_subject(request, create=False)
    return JsonResponse({"key": s.key if s else None})


def do_login(request: HttpRequest, user_id: int) -> JsonResponse:
    user = get_user_model().objects.get(pk=user_id)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    s = resolve_subject(request)
    return JsonResponse({"key": s.key, "pk": s.pk})


def do_logout(request: HttpRequest) -> JsonResponse:
    logout(request)
    return JsonResponse({"ok": True})


def switch(request: HttpRequest, user_id: int) -> JsonResponse:
    """Reads the subject before and after a login within one request."""
    before = request.personalize_subject.key
    user = get_user_model().objects.get(pk=user_id)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    after = request.personalize_subject.key
    logout(request)
    return JsonResponse({"before": before, "after": after,
                         "after_logout": request.personalize_subject.key})


def tracked(request: HttpRequest, external_id: str) -> HttpResponse:
    item = Item.objects.get(external_id=external_id)
    event = track(request, "view", item)
    return HttpResponse("tracked" if event else "skipped")


def untracked(request: HttpRequest, external_id: str) -> HttpResponse:
    Item.objects.get(external_id=external_id)
    return HttpResponse("skipped")


urlpatterns = [
    # The ingestion view at its documented address, without the rest of the API
    # (tests/api/test_events.py also checks the real URL map where it imports).
    path("api/personalize/events/", EventIngestView.as_view(), name="events"),
    path("csrf/", csrf),
    path("plain/", plain),
    path("subject/", subject),
    path("peek/", peek),
    path("login/<int:user_id>/", do_login),
    path("logout/", do_logout),
    path("switch/<int:user_id>/", switch),
    path("tracked/<str:external_id>/", tracked),
    path("untracked/<str:external_id>/", untracked),
]
