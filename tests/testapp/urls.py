from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("personalize/", include("personalize.urls")),
    path("api/personalize/", include("personalize.api.urls")),
]
