from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("personalize/", include("personalize.urls")),
]

try:  # the API lands with the tracking and serving work
    urlpatterns.append(path("api/personalize/", include("personalize.api.urls")))
except ImportError:
    pass
