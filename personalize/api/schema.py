"""The OpenAPI schema of the personalize endpoints and its Swagger UI page.

The endpoints document themselves with drf-spectacular whatever the site's
``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`` says (DRF's default is its own,
incompatible ``AutoSchema``), so the schema works in a site that never
configured drf-spectacular. The docs page loads Swagger UI from the pinned
copy bundled by ``drf-spectacular-sidecar`` through the site's static files,
never from a CDN, unless the site names its own ``SWAGGER_UI_DIST`` /
``SWAGGER_UI_FAVICON_HREF`` in ``SPECTACULAR_SETTINGS``.
"""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from django.urls import include, path, reverse
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.settings import SPECTACULAR_DEFAULTS, spectacular_settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.schemas.inspectors import ViewInspector

import personalize
from personalize.api.errors import DatabaseOutageHandling

#: Where drf-spectacular-sidecar keeps its Swagger UI build (under the static URL).
SWAGGER_UI_STATIC = "drf_spectacular_sidecar/swagger-ui-dist"
SCHEMA_TITLE = "django-personalize"


class PersonalizeSchema(AutoSchema):
    """drf-spectacular's ``AutoSchema``, taking a view's ``operation_id`` attribute if it has one.

    The views are annotated with ``@extend_schema`` on the class (method
    annotations would be built on whatever ``DEFAULT_SCHEMA_CLASS`` the site
    has when this module is imported), where drf-spectacular advises against
    ``operation_id``; a single-operation view names its id here instead.
    """

    def get_operation_id(self) -> str:
        """The view's ``operation_id`` attribute, else drf-spectacular's own id."""
        return getattr(self.view, "operation_id", None) or super().get_operation_id()


class DocumentedView:
    """Mixin for the API views: documented by :class:`PersonalizeSchema`.

    A class attribute, as DRF documents for a per-view schema, so the site's
    ``DEFAULT_SCHEMA_CLASS`` does not matter.
    """

    schema: ViewInspector | None = PersonalizeSchema()


class ErrorSerializer(serializers.Serializer):
    """DRF's error body, ``{"detail": "..."}`` (describes responses; never run)."""

    detail = serializers.CharField()


def error_response(description: str) -> OpenApiResponse:
    """A documented error answered with DRF's ``{"detail": "..."}`` body."""
    return OpenApiResponse(ErrorSerializer, description=description)


#: 400 from a serializer: each invalid field or parameter as a key, with its messages
#: (``{"detail": "..."}`` when the body could not be parsed at all).
INVALID_FIELDS = OpenApiResponse(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
        },
    },
    description="An invalid field or parameter, named as the error's key.",
)


class VisitorSessionScheme(SessionScheme):
    """The consent endpoints' session authentication: the session cookie, CSRF for everyone.

    Each authentication class needs a scheme name of its own: drf-spectacular
    keeps one component per name.
    """

    target_class = "personalize.api.consent.VisitorSessionAuthentication"
    name = "visitorSession"


class BrowserSessionScheme(SessionScheme):
    """The event endpoint's session authentication: the session cookie, CSRF for everyone."""

    target_class = "personalize.api.events.BrowserSessionAuthentication"
    name = "browserSession"


@extend_schema(exclude=True)  # the schema documents the API, not itself
class SchemaView(DatabaseOutageHandling, DocumentedView, SpectacularAPIView):
    """The OpenAPI schema of the personalize endpoints, wherever they are mounted."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The schema of ``personalize.api.urls`` under the prefix the site mounted it at."""
        mounted = reverse("personalize:recommendations")
        prefix = mounted[: -len("recommendations/")].lstrip("/")
        self.patterns = [path(prefix, include("personalize.api.urls"))]
        response = super().get(request, *args, **kwargs)
        info = response.data["info"]
        if not info.get("title"):  # SPECTACULAR_SETTINGS["TITLE"] left at its default
            info.update(title=SCHEMA_TITLE, version=personalize.__version__)
        return response


def swagger_ui_assets() -> dict[str, str]:
    """The Swagger UI files of the docs page: the sidecar's, unless the site names others.

    Returns:
        The docs template's asset URLs, keyed as drf-spectacular's
        ``swagger_ui.html`` names them. Only what is still at drf-spectacular's
        default (a CDN at ``@latest``) is replaced; a ``SWAGGER_UI_DIST`` or
        ``SWAGGER_UI_FAVICON_HREF`` the site set itself is kept.
    """
    assets: dict[str, str] = {}
    dist = spectacular_settings.SWAGGER_UI_DIST
    if dist == SPECTACULAR_DEFAULTS["SWAGGER_UI_DIST"]:
        assets.update(
            swagger_ui_css=static(f"{SWAGGER_UI_STATIC}/swagger-ui.css"),
            swagger_ui_bundle=static(f"{SWAGGER_UI_STATIC}/swagger-ui-bundle.js"),
            swagger_ui_standalone=static(f"{SWAGGER_UI_STATIC}/swagger-ui-standalone-preset.js"),
        )
    favicon = spectacular_settings.SWAGGER_UI_FAVICON_HREF
    if favicon == SPECTACULAR_DEFAULTS["SWAGGER_UI_FAVICON_HREF"]:
        assets["favicon_href"] = static(f"{SWAGGER_UI_STATIC}/favicon-32x32.png")
    return assets


@extend_schema(exclude=True)
class DocsView(DatabaseOutageHandling, DocumentedView, SpectacularSwaggerView):
    """A browsable page for the schema (Swagger UI from the bundled, pinned sidecar build)."""

    title = f"{SCHEMA_TITLE} API"

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The Swagger UI page, its assets served by the site's static files."""
        response = super().get(request, *args, **kwargs)
        response.data.update(swagger_ui_assets())
        return response
