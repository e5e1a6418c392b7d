"""REST endpoints for recommendations (thin callers of :mod:`personalize.serving.service`).

``GET /api/personalize/recommendations/?placement=home&limit=8``
    The requesting visitor's block (the session's user, or the visitor cookie).
    Staff holding ``personalize.view_any_recommendations`` may add
    ``subject=<subject key>``; anyone else gets 403 for it.
``GET /api/personalize/items/<external_id>/similar/?limit=6``
    Items similar to one item, the same for everyone.

Each block answered is an exposure (:mod:`personalize.outcomes.exposures`)
when the visitor allows ``analytics``: its impression id is the answer's
``"impression"`` (``null`` when nothing was logged), and each result carries
its 1-based ``"position"``; a click sends both back in its ``context``.
A staff member's ``subject=`` answer is a preview and logs nothing.

Every query parameter goes through a serializer; an invalid one gives 400
with the parameter's name as the key of the error. A placement that does not
exist gives 404 naming the known ones: the API never creates placements, and
keeps nothing for a name a caller made up. Responses are built as
plain dicts: the serializers below describe them for the schema, but running
them per item would cost more than a cache hit does. The renderers are DRF's
defaults unless ``PERSONALIZE["API_RENDERER_CLASSES"]`` names others.
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalize.api.errors import DatabaseOutageHandling
from personalize.api.renderers import ConfiguredRenderers
from personalize.api.schema import INVALID_FIELDS, DocumentedView, error_response
from personalize.conf import personalize_settings
from personalize.models import Subject
from personalize.outcomes.exposures import API, log_exposure
from personalize.serving import cache as block_cache
from personalize.serving.cache import Row
from personalize.serving.placements import (
    get_placement,
    placement_exists,
    unknown_placement_message,
)
from personalize.serving.service import resolve_item, serve_block, serve_similar_block
from personalize.strategies.registry import strategy_names

#: Staff with this permission may read any subject's recommendations.
VIEW_ANY_PERMISSION = "personalize.view_any_recommendations"


def _limit_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, min_value=1, max_value=int(personalize_settings.MAX_LIMIT),
        help_text="How many items (default: the placement's limit; at most MAX_LIMIT).",
    )


def check_placement(name: str | None) -> None:
    """404 naming the known placements when ``name`` has no row (the API creates none)."""
    if name is not None and not placement_exists(name):
        raise exceptions.NotFound(unknown_placement_message(name))


class QuerySerializer(serializers.Serializer):
    """A query string: its syntax here, what it names in :meth:`check_references`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["limit"] = _limit_field()  # MAX_LIMIT is read at call time

    def check_references(self, params: dict[str, Any]) -> None:
        """Raise ``ValidationError`` naming a parameter whose target does not exist."""


class RecommendationsQuerySerializer(QuerySerializer):
    """The query string of the recommendations endpoint."""

    placement = serializers.SlugField(
        required=False, default="home", max_length=64, help_text="The placement name."
    )
    limit = serializers.IntegerField(required=False, min_value=1)
    item = serializers.CharField(
        required=False, max_length=255,
        help_text="External id of the page's item (excluded; its category is preferred).",
    )
    subject = serializers.CharField(
        required=False, max_length=32,
        help_text="A subject key (staff with personalize.view_any_recommendations only).",
    )

    def check_references(self, params: dict[str, Any]) -> None:
        check_placement(params.get("placement"))
        if "item" in params and resolve_item(params["item"]) is None:
            raise exceptions.ValidationError({"item": ["Unknown item."]})


class SimilarQuerySerializer(QuerySerializer):
    """The query string of the similar-items endpoint."""

    limit = serializers.IntegerField(required=False, min_value=1)
    strategy = serializers.ChoiceField(
        choices=(), required=False, help_text="A configured strategy name."
    )
    placement = serializers.SlugField(
        required=False, max_length=64, help_text="A placement whose filters apply."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = strategy_names()  # the configured ones, read per request (and in the schema)
        strategy: Any = self.fields["strategy"]
        strategy.choices = names
        strategy.error_messages["invalid_choice"] = (
            f"Unknown strategy; configured: {', '.join(names)}.")

    def check_references(self, params: dict[str, Any]) -> None:
        check_placement(params.get("placement"))


class RecommendationSerializer(serializers.Serializer):
    """One recommended item (describes the response; not run per request)."""

    item = serializers.CharField(help_text="The item's external id.")
    position = serializers.IntegerField(
        min_value=1, help_text="1-based position in the block (send it with a click).")
    title = serializers.CharField()
    url = serializers.CharField(allow_null=True)
    categories = serializers.ListField(child=serializers.CharField())
    attributes = serializers.DictField(
        help_text="The item's catalog attributes, as the site maps them in "
                  "PERSONALIZE['CATALOG'] (price, brand, image, ...).",
    )
    score = serializers.FloatField()
    strategy = serializers.CharField()
    personalized = serializers.BooleanField()
    explanation = serializers.CharField()


class BlockSerializer(serializers.Serializer):
    """A block of recommendations (describes the response; not run per request)."""

    placement = serializers.CharField()
    heading = serializers.CharField()
    personalized = serializers.BooleanField(help_text="Whether any item is personalized.")
    impression = serializers.UUIDField(
        allow_null=True,
        help_text="The impression id of this block (send it with a click on one of its "
                  "items); null when it was not logged (no analytics consent, no subject yet, "
                  "or a staff preview).")
    results = RecommendationSerializer(many=True)


def recommendation_data(row: Row, position: int) -> dict[str, Any]:
    """The JSON form of one recommended item at its 1-based ``position``."""
    return {
        "item": row.external_id,
        "position": position,
        "title": row.title,
        "url": row.url,
        "categories": row.categories,
        "attributes": row.attributes,
        "score": row.score,
        "strategy": row.strategy,
        "personalized": row.personalized,
        "explanation": row.explanation,
    }


def block_data(placement: str, heading: str, rows: list[Row],
               impression: uuid.UUID | None = None) -> dict[str, Any]:
    """The JSON form of a block."""
    return {
        "placement": placement,
        "heading": heading,
        "personalized": any(r.personalized for r in rows),
        "impression": str(impression) if impression is not None else None,
        "results": [recommendation_data(r, n) for n, r in enumerate(rows, 1)],
    }


#: Parameters every DRF view understands.
_GENERIC_PARAMS = frozenset({"format"})


def _validated(serializer_class: type[QuerySerializer], request: Request) -> dict[str, Any]:
    """The validated query string; 400 naming the first bad (or unknown) parameter."""
    # A plain dict, not the QueryDict: DRF reads a form's empty value as "not given",
    # but a parameter that is given must be valid (``?item=`` is a 400, not ignored).
    serializer = serializer_class(data=request.query_params.dict())
    unknown = sorted(set(request.query_params) - _GENERIC_PARAMS - set(serializer.fields))
    if unknown:
        raise exceptions.ValidationError({unknown[0]: ["Unknown parameter."]})
    serializer.is_valid(raise_exception=True)
    params = dict(serializer.validated_data)
    serializer.check_references(params)
    return params


class BlockResponse(Response):
    """A block's response that writes the block's cache entry once it has been sent.

    On a cache miss the entry is written in :meth:`close`, which the server
    calls after the last byte went out (WSGI and ASGI alike), so the visitor
    does not wait for that round trip. A response never closed leaves the
    block uncached: the next request computes it again, nothing worse.
    """

    def __init__(self, data: Any, writes: list[tuple[str, Any, int]]) -> None:
        super().__init__(data)
        self.cache_writes = writes

    def __getstate__(self) -> Any:
        # a copy kept by a page cache must not write the entry again when served
        state = super().__getstate__()
        return {**state, "cache_writes": []} if isinstance(state, dict) else state

    def close(self) -> None:
        writes, self.cache_writes = self.cache_writes, []
        try:
            for key, entry, ttl in writes:
                block_cache.write(key, entry, ttl)  # logs a failure, never raises
        finally:
            super().close()


def may_view_any(user: Any) -> bool:
    """Whether ``user`` may read another subject's recommendations."""
    return bool(user and user.is_active and user.is_staff and user.has_perm(VIEW_ANY_PERMISSION))


@extend_schema(
    parameters=[RecommendationsQuerySerializer],
    responses={
        200: BlockSerializer,
        400: INVALID_FIELDS,
        403: error_response("subject= without the permission."),
        404: error_response("No such placement; the answer names the known ones."),
        503: error_response("The database is unavailable; see Retry-After."),
    },
    examples=[OpenApiExample("A block", response_only=True, value={
        "placement": "home", "heading": "Recommended for You", "personalized": True,
        "impression": "3f0c5b9e-8a41-4c53-9d7e-2b1f6c0a9e12",
        "results": [{"item": "sku-42", "position": 1, "title": "Cordless drill", "url": "/p/42/",
                     "categories": ["Tools"],
                     "attributes": {"price": 89.0, "brand": "Makita", "image": "/media/drill.jpg"},
                     "score": 0.83, "strategy": "item_knn",
                     "personalized": True,
                     "explanation": "Because you viewed Hammer drill bits"}],
    })],
)
class RecommendationsView(DatabaseOutageHandling, DocumentedView, ConfiguredRenderers, APIView):
    """The requesting visitor's recommendations for one placement."""

    permission_classes = [AllowAny]
    operation_id = "personalize_recommendations"

    def get(self, request: Request) -> Response:
        """The visitor's block, or another subject's for staff with the permission."""
        params = _validated(RecommendationsQuerySerializer, request)
        who: Any = request
        if "subject" in params:
            if not may_view_any(request.user):
                raise exceptions.PermissionDenied(
                    "Only staff with personalize.view_any_recommendations may pass subject."
                )
            subject = Subject.objects.filter(key=params["subject"]).first()
            if subject is None:
                raise exceptions.ValidationError({"subject": ["Unknown subject."]})
            who = subject
        placement = params["placement"]
        context = {"item": params["item"]} if "item" in params else None
        writes: list[tuple[str, Any, int]] = []
        served = serve_block(who, placement, limit=params.get("limit"), context=context,
                             store=lambda *entry: writes.append(entry))
        # another subject's block, read by staff, is a preview: nobody was exposed
        impression = log_exposure(served, API) if who is request else None
        response = BlockResponse(
            block_data(placement, get_placement(placement).heading, served.rows, impression),
            writes)
        response["Cache-Control"] = "private, no-store"
        return response


@extend_schema(
    parameters=[SimilarQuerySerializer],
    responses={
        200: BlockSerializer,
        400: INVALID_FIELDS,
        404: error_response("No item has this external id, or no such placement."),
        503: error_response("The database is unavailable; see Retry-After."),
    },
)
class SimilarItemsView(DatabaseOutageHandling, DocumentedView, ConfiguredRenderers, APIView):
    """Items similar to one item (the same for every visitor)."""

    permission_classes = [AllowAny]
    operation_id = "personalize_similar_items"

    def get(self, request: Request, external_id: str) -> Response:
        """Items similar to the item ``external_id``."""
        params = _validated(SimilarQuerySerializer, request)
        if resolve_item(external_id) is None:
            raise exceptions.NotFound("Unknown item.")
        placement = params.get("placement")
        writes: list[tuple[str, Any, int]] = []
        served = serve_similar_block(
            external_id, params.get("limit", 10), strategy=params.get("strategy"),
            placement=placement, store=lambda *entry: writes.append(entry), audience=request)
        config = get_placement(placement) if placement else None
        heading = config.heading if config is not None and config.configured else "Similar items"
        return BlockResponse(
            block_data(placement or "similar", heading, served.rows, log_exposure(served, API)),
            writes)

