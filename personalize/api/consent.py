"""REST endpoints for the visitor's own consent and data (thin callers of the consent services).

``GET/POST /api/personalize/consent/``
    Read the requesting visitor's consent per purpose; record a decision with
    ``{"purpose": "personalization", "granted": true}``.
``GET/DELETE /api/personalize/me/data/``
    Export everything held about the requesting visitor as JSON; erase it and
    clear the visitor cookie.

Both identify the visitor by the session (signed-in users) or the signed
visitor cookie, so both need CSRF protection on unsafe methods, for anonymous
visitors too (DRF's SessionAuthentication checks CSRF only for signed-in users).
"""

from __future__ import annotations

from typing import Any

from django.http.multipartparser import MultiPartParserError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalize.api.errors import DatabaseOutageHandling
from personalize.api.fields import StrictBooleanField, StrictCharField
from personalize.api.schema import INVALID_FIELDS, DocumentedView, error_response
from personalize.conf import personalize_settings
from personalize.consent import service
from personalize.consent.rights import empty_export, erase_subject, export_subject
from personalize.identity import resolve_subject, visitor_state
from personalize.models.consent import ConsentSource


class VisitorSessionAuthentication(SessionAuthentication):
    """Session authentication that enforces CSRF for anonymous visitors as well.

    An anonymous visitor is identified by a cookie, so a cross-site form could
    otherwise change their consent or erase their data.
    """

    def authenticate(self, request: Request) -> Any:
        result = super().authenticate(request)
        if result is None:
            self.enforce_csrf(request)
        return result

    def enforce_csrf(self, request: Any) -> None:
        # Check on the plain HttpRequest: DRF's request would parse the body first.
        try:
            super().enforce_csrf(getattr(request, "_request", request))
        except MultiPartParserError as exc:
            # Django's CSRF check reads a form body for its token; a broken one is the
            # client's mistake (400), as DRF's own parsers would answer
            raise ParseError(f"Multipart form parse error - {exc}") from exc


class ConsentStateSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    granted = serializers.BooleanField()
    decided_by = serializers.ChoiceField(choices=["explicit", "default", "signal"])
    since = serializers.DateTimeField(allow_null=True)
    policy_version = serializers.CharField(allow_null=True)
    source = serializers.CharField(allow_null=True)  # type: ignore[assignment]


class ConsentDocumentSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=["opt-in", "opt-out"])
    policy_version = serializers.CharField()
    decided = serializers.BooleanField(help_text="Whether every purpose has been decided.")
    purposes = serializers.DictField(child=ConsentStateSerializer())


class PurposeField(serializers.ChoiceField):
    """A configured consent purpose: an enum in the schema, read from the settings per request.

    A value that is not a string, is blank or is too long gets the same error as
    from a ``CharField``; any other unknown one names the configured purposes.
    """

    def __init__(self, **kwargs: Any) -> None:
        # DRF builds the field anew for every serializer: the choices are current
        super().__init__(choices=service.purposes(), **kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = StrictCharField(max_length=32).run_validation(data)
        try:
            return service.validate_purpose(text)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class ConsentDecisionSerializer(serializers.Serializer):
    """One decision: ``{"purpose": "personalization", "granted": true}``."""

    purpose = PurposeField(help_text="A configured consent purpose.")
    granted = StrictBooleanField()
    policy_version = StrictCharField(
        max_length=32, required=False,
        help_text="The policy version the visitor saw; defaults to CONSENT_POLICY_VERSION.",
    )


def consent_document(request: Any) -> dict[str, Any]:
    """The body of ``GET /consent/``: mode, policy version and the state of every purpose."""
    states = service.get_consent(request)
    return {
        "mode": personalize_settings.CONSENT_MODE,
        "policy_version": personalize_settings.CONSENT_POLICY_VERSION,
        "decided": all(s.is_decided for s in states.values()),
        "purposes": {purpose: state.as_dict() for purpose, state in states.items()},
    }


class _VisitorView(DatabaseOutageHandling, DocumentedView, APIView):
    authentication_classes = [VisitorSessionAuthentication]
    permission_classes = [AllowAny]


@extend_schema(methods=["GET"], responses=ConsentDocumentSerializer, summary="Read your consent")
@extend_schema(
    # a form-encoded decision is accepted too, for pages without JavaScript
    methods=["POST"], request={"application/json": ConsentDecisionSerializer},
    responses={200: ConsentDocumentSerializer, 400: INVALID_FIELDS,
               403: error_response("CSRF failed, or no visitor to record the decision for."),
               415: error_response("A body that is not JSON or a form.")},
    summary="Grant or withdraw consent for one purpose",
)
class ConsentView(_VisitorView):
    """The requesting visitor's own consent."""

    def get(self, request: Request) -> Response:
        return Response(consent_document(request))

    def post(self, request: Request) -> Response:
        decision = ConsentDecisionSerializer(data=request.data)
        decision.is_valid(raise_exception=True)
        data = decision.validated_data
        record = service.grant_consent if data["granted"] else service.revoke_consent
        try:
            record(
                request, data["purpose"], source=ConsentSource.API,
                policy_version=data.get("policy_version"),
            )
        except service.NoSubjectError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        return Response(consent_document(request))


class SubjectExportSerializer(serializers.Serializer):
    """The data export (describes the response; see docs/consent.md for its layout)."""

    subject = serializers.DictField(allow_null=True)
    events = serializers.ListField()
    consent = serializers.DictField()
    profile = serializers.DictField()


class ErasureResultSerializer(serializers.Serializer):
    """What an erasure removed (``null`` when there was no subject to erase)."""

    erased = serializers.DictField(allow_null=True)


@extend_schema(methods=["GET"], responses=SubjectExportSerializer, summary="Export your data")
@extend_schema(
    methods=["DELETE"], request=None,
    responses={200: ErasureResultSerializer, 403: error_response("CSRF failed.")},
    summary="Erase your data",
)
class MyDataView(_VisitorView):
    """Everything held about the requesting visitor: export it, or erase it."""

    def get(self, request: Request) -> Response:
        subject = resolve_subject(request, create=False)
        body = export_subject(subject) if subject is not None else empty_export()
        response = Response(body)
        response["Content-Disposition"] = 'inline; filename="personalize-my-data.json"'
        return response

    def delete(self, request: Request) -> Response:
        subject = resolve_subject(request, create=False)
        report = erase_subject(subject) if subject is not None else None
        # The request must not go on using (or re-issuing a cookie for) the erased subject.
        visitor_state(request._request).forget()
        response = Response({"erased": report.as_dict() if report else None})
        s = personalize_settings
        response.delete_cookie(s.VISITOR_COOKIE_NAME, samesite=s.VISITOR_COOKIE_SAMESITE)
        return response
