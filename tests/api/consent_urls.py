"""The consent endpoints at their documented addresses, without the rest of the API.

tests/api/test_consent.py also checks the real URL map where it imports.
"""

from django.urls import include, path

from personalize.api.consent import ConsentView, MyDataView

urlpatterns = [
    path("api/personalize/consent/", ConsentView.as_view(), name="consent"),
    path("api/personalize/me/data/", MyDataView.as_view(), name="my-data"),
    path("personalize/", include("personalize.urls")),
]
