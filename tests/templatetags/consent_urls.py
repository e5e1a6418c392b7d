"""Pages that use the consent tags, plus the consent form endpoint and choices page."""

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path

PAGE = engines["django"].from_string(
    "{% load personalize_consent %}<html lang=\"en\" {% consent_attrs %}><body>"
    "{% consent_banner policy_url=\"/privacy/\" %}</body></html>"
)


CHOICES = engines["django"].from_string(
    "{% load personalize_consent %}<main>{% consent_preferences %}</main>"
)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE.render({}, request))


def choices(request: HttpRequest) -> HttpResponse:
    """A site's own privacy page, with the choices inline."""
    return HttpResponse(CHOICES.render({}, request))


urlpatterns = [
    path("page/", page),
    path("choices/", choices),
    path("personalize/", include("personalize.urls")),
]
