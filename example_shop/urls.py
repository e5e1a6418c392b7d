"""URLs of the demo shop: the shop, auth, the admin and django-personalize."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("", include("example_shop.shop.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(next_page="shop:home"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="shop:home"), name="logout"),
    path("admin/", admin.site.urls),
    path("api/personalize/", include("personalize.api.urls")),
    path("personalize/", include("personalize.urls")),
]

if settings.DEBUG:
    urlpatterns += staticfiles_urlpatterns()
