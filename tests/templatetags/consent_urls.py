"""A page that uses the consent tags, plus the banner's form endpoint."""

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path

PAGE = engines["django"].from_string(
    "{% load personalize_consent %}<html lang=\"en\" {% consent_attrs %}><body>"
    "{% consent_banner policy_url=\"/privacy/\" %}</body></html>"
)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE.render({}, request))


urlpatterns = [
    path("page/", page),
    path("personalize/", include("personalize.urls")),
]
