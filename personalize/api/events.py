"""``POST /api/personalize/events/``: event ingestion for browsers and servers.

Two kinds of caller:

* **browsers** (the JavaScript tracker, or any page script): the visitor's own
  events, identified by the session or the visitor cookie. CSRF is required for
  every cookie-bearing call, signed in or not (the token may travel in the
  ``X-CSRFToken`` header or, for ``navigator.sendBeacon``, as
  ``"csrfmiddlewaretoken"`` in the JSON body). Crawlers are not recorded;
  per-IP and per-subject rate limits apply. Events may not name a subject.
* **servers**: authenticated by one of ``PERSONALIZE["SERVER_AUTHENTICATION_CLASSES"]``
  (by default DRF's ``TokenAuthentication`` when ``rest_framework.authtoken`` is
  installed) as a user holding the ``personalize.add_event`` permission. Each
  event names its ``subject`` (a subject key or a user id). No CSRF, no bot
  filter, no rate limit.

The view is a thin caller of :mod:`personalize.tracking.ingest`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError
from django.utils.module_loading import import_string
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalize.api.errors import DatabaseOutageHandling, service_unavailable
from personalize.api.renderers import ConfiguredRenderers
from personalize.api.schema import DocumentedView, ErrorSerializer, error_response
from personalize.conf import personalize_settings
from personalize.identity import resolve_subject
from personalize.identity.bots import is_bot_request
from personalize.models.events import EventSource
from personalize.tracking import ratelimit
from personalize.tracking.consent_gate import may_create_subject
from personalize.tracking.ingest import (
    NO_CONSENT,
    PayloadError,
    decode_payload,
    ingest_events,
    reject_all,
)
from personalize.tracking.validation import Problem

logger = logging.getLogger(__name__)

#: The permission a server-to-server caller needs (Event's default "add" permission).
SERVER_PERMISSION = "personalize.add_event"
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain", "")
BOT_PROBLEM = Problem("user_agent", "crawler and monitor traffic is not recorded")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class BrowserSessionAuthentication(SessionAuthentication):
    """Session authentication whose CSRF check runs on the plain ``HttpRequest``.

    DRF's check reads ``request.POST`` through the DRF request, which would run
    the parsers over the body a second time; the Django request answers from
    the header (or the token this view copied there from the JSON body).
    """

    def enforce_csrf(self, request: Any) -> None:
        super().enforce_csrf(getattr(request, "_request", request))


def server_authentication_classes() -> list[type[BaseAuthentication]]:
    """The authentication classes that identify server-to-server callers."""
    configured = personalize_settings.SERVER_AUTHENTICATION_CLASSES
    if configured is None:
        if not apps.is_installed("rest_framework.authtoken"):
            return []
        from rest_framework.authentication import TokenAuthentication

        return [TokenAuthentication]
    return [import_string(path) if isinstance(path, str) else path for path in configured]


def client_ip(request: Any) -> str:
    """The client address: ``REMOTE_ADDR`` or the META key a proxy sets (``CLIENT_IP_META_KEY``)."""
    key = personalize_settings.CLIENT_IP_META_KEY or "REMOTE_ADDR"
    raw = str(request.META.get(key) or request.META.get("REMOTE_ADDR") or "")
    # X-Forwarded-For style lists: the first address is the client's.
    return raw.split(",")[0].strip()[:64]


EXAMPLE_BATCH = {
    "events": [
        {"event_id": "5f0c6a2e-8d1b-4c1e-9a57-0c2f1e3b9d11", "type": "view", "item": "sku-1"},
        {"type": "rating", "item": "sku-2", "value": 4.5},
        {"type": "teleport", "item": "sku-3"},
    ]
}
EXAMPLE_REPORT = {
    "accepted": 2, "duplicate": 0, "rejected": 1,
    "results": [
        {"index": 0, "status": "accepted", "event_id": "5f0c6a2e-8d1b-4c1e-9a57-0c2f1e3b9d11"},
        {"index": 1, "status": "accepted", "event_id": "0d9e6f0a-77c1-4a39-8d7f-2b0e5c1a4f60"},
        {"index": 2, "status": "rejected", "field": "type",
         "reason": "unknown event type 'teleport'"},
    ],
}


class EventSerializer(serializers.Serializer):
    """One event (describes the request; validation is :mod:`personalize.tracking.validation`)."""

    type = serializers.ChoiceField(choices=(), help_text="A configured event type.")
    item = serializers.CharField(
        required=False, max_length=255,
        help_text="The item's external id (an integer is read as its text).",
    )
    value = serializers.FloatField(
        required=False, allow_null=True,
        help_text="The rating (required for ratings), seconds for dwell, else optional.",
    )
    event_id = serializers.UUIDField(
        required=False, help_text="Makes the event idempotent: a second copy is a duplicate.")
    timestamp = serializers.DateTimeField(
        required=False, help_text="When it happened (ISO 8601 or epoch seconds); default now.")
    context = serializers.DictField(  # type: ignore[assignment]
        required=False, help_text="A small flat object of strings, numbers, booleans or null.")
    subject = serializers.CharField(
        required=False, max_length=32,
        help_text="Server-to-server callers only: a subject key (or a user id as an integer).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the configured types, read when the schema is generated
        choice: Any = self.fields["type"]
        choice.choices = sorted(personalize_settings.event_weights)


class EventBatchSerializer(serializers.Serializer):
    """The request body; one event object or a bare list of events is accepted too."""

    events = EventSerializer(many=True)
    csrfmiddlewaretoken = serializers.CharField(
        required=False, help_text="The CSRF token, for navigator.sendBeacon (no headers).")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        batch: Any = self.fields["events"]
        batch.min_length, batch.max_length = 1, int(personalize_settings.MAX_BATCH_SIZE)


class EventResultSerializer(serializers.Serializer):
    """What became of one event of the batch, by its index."""

    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    event_id = serializers.CharField(required=False, help_text="Stored or known events only.")
    field = serializers.CharField(required=False, help_text="Rejected events: the bad field.")
    reason = serializers.CharField(required=False, help_text="Rejected events: why.")


class EventReportSerializer(serializers.Serializer):
    """The answer to a batch: counts, and each event's result by index."""

    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = EventResultSerializer(many=True)


@extend_schema(
    summary="Record events",
    description=(
        "Record one event or a batch; the answer reports each event by index. The body is "
        '{"events": [...]}, a bare list, or one event object, as JSON (sent as text/plain '
        "too, for navigator.sendBeacon)."
    ),
    request={"application/json": EventBatchSerializer},
    responses={
        200: OpenApiResponse(EventReportSerializer, description="At least one event stored."),
        400: OpenApiResponse(
            PolymorphicProxySerializer(
                component_name="EventBatchRejected",
                serializers=[EventReportSerializer, ErrorSerializer], resource_type_field_name=None,
            ),
            description="Every event rejected (the report says why), or a malformed body.",
        ),
        403: error_response("CSRF failed, or no personalize.add_event."),
        413: error_response("Body over MAX_BODY_BYTES."),
        415: error_response("Not JSON."),
        429: error_response("Rate limit; see Retry-After."),
        503: error_response(
            "The database is unavailable or could not store the events; see Retry-After."),
    },
    examples=[
        OpenApiExample("batch", value=EXAMPLE_BATCH, request_only=True),
        OpenApiExample("report", value=EXAMPLE_REPORT, response_only=True),
    ],
)
class EventIngestView(DatabaseOutageHandling, DocumentedView, ConfiguredRenderers, APIView):
    """Record one event or a batch; the answer reports each event by index."""

    parser_classes: list[Any] = []  # the body is decoded once, by decode_payload
    permission_classes = [AllowAny]  # decided per caller kind in post()
    throttle_classes: list[Any] = []  # cache-backed limits of our own (ratelimit)
    http_method_names = ["post", "options"]

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Server authenticators first: an Authorization header wins over a
        # session cookie a server-side client might also carry.
        return [cls() for cls in server_authentication_classes()] + [
            BrowserSessionAuthentication()
        ]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # The body is read before authentication so a CSRF token sent in it
        # (sendBeacon cannot set headers) is where Django's check looks.
        self.events: list[Any] = []
        if request.method == "POST":
            self.events, token = self._read_events(request)
            header = settings.CSRF_HEADER_NAME
            if token and not request._request.META.get(header):
                request._request.META[header] = token
        super().initial(request, *args, **kwargs)

    def _read_events(self, request: Request) -> tuple[list[Any], str | None]:
        limit = int(personalize_settings.MAX_BODY_BYTES)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise PayloadTooLarge(f"Request body over {limit} bytes.")
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise exceptions.UnsupportedMediaType(
                content_type, detail=f"Unsupported content type {content_type[:60]!r}: send JSON."
            )
        try:
            body = request._request.body
        except RequestDataTooBig:
            raise PayloadTooLarge(f"Request body over {limit} bytes.") from None
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body over {limit} bytes.")
        try:
            return decode_payload(body)
        except PayloadError as exc:
            raise exceptions.ParseError(exc.detail) from None

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        authenticator = request.successful_authenticator
        is_server = authenticator is not None and not isinstance(
            authenticator, SessionAuthentication
        )
        try:
            if is_server:
                if not request.user.has_perm(SERVER_PERMISSION):
                    raise exceptions.PermissionDenied(
                        f"Server-to-server ingestion needs the {SERVER_PERMISSION} permission."
                    )
                report = ingest_events(self.events, allow_subject=True, source=EventSource.API)
            else:
                report = self._browser(request)
        except DataError:
            logger.exception("The database refused an event batch")
            return Response(
                {"detail": "The database refused the events' data."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        except DatabaseError:
            logger.exception("Event batch could not be stored")
            return service_unavailable("Events could not be stored; retry later.")
        code = status.HTTP_200_OK if report.stored_or_known else status.HTTP_400_BAD_REQUEST
        return Response(report.as_dict(), status=code)

    def _browser(self, request: Request) -> Any:
        if request.successful_authenticator is None:
            # DRF checks CSRF only for signed-in sessions; the visitor cookie is
            # an ambient credential too, so anonymous calls need the token.
            BrowserSessionAuthentication().enforce_csrf(request)
        count = len(self.events)
        if is_bot_request(request):
            return reject_all(count, BOT_PROBLEM)
        limited = ratelimit.hit_ip(client_ip(request), count)
        if limited:
            raise exceptions.Throttled(wait=limited.retry_after, detail=_throttled(limited))
        subject = resolve_subject(request, create=False)
        if subject is None and may_create_subject(request):
            subject = resolve_subject(request, create=True)
        if subject is not None:
            limited = ratelimit.hit_subject(subject.pk, count)
            if limited:
                raise exceptions.Throttled(wait=limited.retry_after, detail=_throttled(limited))
        return ingest_events(
            self.events, subject=subject, no_subject=NO_CONSENT, request=request._request,
            source=EventSource.BROWSER,
        )


def _throttled(limited: ratelimit.RateLimited) -> str:
    return (
        f"Too many events for this {limited.scope}; "
        f"retry in {limited.retry_after} seconds."
    )
