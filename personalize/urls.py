"""Non-API pages and form endpoints.

Mount with ``path("personalize/", include("personalize.urls"))``; the REST API
is mounted separately from ``personalize.api.urls``.
"""

from django.urls import path

from personalize import views

app_name = "personalize_web"

urlpatterns = [
    path("consent/", views.consent_form, name="consent"),
]
