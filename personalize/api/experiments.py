"""REST endpoint for an experiment's results: a thin caller of ``experiment_payload``.

``GET /api/personalize/experiments/<id>/results/``
    Staff only (``is_staff``, signed in by whatever authentication the site's
    ``REST_FRAMEWORK`` names: the admin's session by default). The body is
    :func:`~personalize.experiments.results.experiment_payload`: the
    experiment's settings, its report and its daily timeline per variant, for a
    dashboard to plot. An unknown id answers 404; a draft that cannot be
    analysed yet (fewer than two variants, or not exactly one control) 409,
    saying why.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personalize.api.errors import DatabaseOutageHandling
from personalize.api.schema import DocumentedView, error_response
from personalize.experiments.results import experiment_payload
from personalize.models import Experiment


class Conflict(exceptions.APIException):
    """409: the experiment exists but cannot be analysed in its present state."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The experiment cannot be analysed yet."
    default_code = "conflict"


# The serializers below describe the response for the schema; they are never run.

class IntervalSerializer(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()


class RateSerializer(serializers.Serializer):
    successes = serializers.IntegerField()
    n = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    interval = IntervalSerializer(allow_null=True)


class MeanSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    sd = serializers.FloatField(allow_null=True)
    interval = IntervalSerializer(allow_null=True)


class VariantResultSerializer(serializers.Serializer):
    key = serializers.CharField()
    is_control = serializers.BooleanField()
    subjects = serializers.IntegerField(help_text="Subjects the estimates cover.")
    exposed = serializers.IntegerField(help_text="Every subject exposed so far.")
    ctr = RateSerializer()
    conversion = RateSerializer()
    revenue = MeanSerializer()


class ComparisonSerializer(serializers.Serializer):
    control = serializers.FloatField(allow_null=True)
    value = serializers.FloatField(allow_null=True)
    lift = serializers.FloatField(allow_null=True, help_text="Relative: value / control - 1.")
    interval = IntervalSerializer(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)


class VariantComparisonSerializer(serializers.Serializer):
    variant = serializers.CharField()
    metric = serializers.CharField()
    comparison = ComparisonSerializer()
    p_adjusted = serializers.FloatField(allow_null=True)
    significant = serializers.BooleanField()


class DesignSerializer(serializers.Serializer):
    metric = serializers.CharField(help_text="The primary metric (the verdict's).")
    mde = serializers.FloatField()
    alpha = serializers.FloatField()
    power = serializers.FloatField()
    bandit = serializers.BooleanField()
    running = serializers.BooleanField()


class SampleRatioSerializer(serializers.Serializer):
    observed = serializers.ListField(child=serializers.IntegerField())
    expected_shares = serializers.ListField(child=serializers.FloatField())
    p_value = serializers.FloatField()
    mismatch = serializers.BooleanField()


class PlanSerializer(serializers.Serializer):
    planned = serializers.DictField(child=serializers.IntegerField(),
                                    help_text="Variant key -> subjects needed.")
    progress = serializers.FloatField()
    reached = serializers.BooleanField()
    days_left = serializers.FloatField(allow_null=True)


class ReportSerializer(serializers.Serializer):
    design = DesignSerializer()
    variants = VariantResultSerializer(many=True)
    comparisons = serializers.DictField(child=VariantComparisonSerializer(many=True),
                                        help_text="Metric -> each variant against the control.")
    srm = SampleRatioSerializer(allow_null=True)
    plan = PlanSerializer(allow_null=True)
    interim = serializers.BooleanField()
    horizon_day = serializers.IntegerField(allow_null=True)
    horizon_date = serializers.DateField(allow_null=True)
    verdict = serializers.CharField()
    warnings = serializers.ListField(child=serializers.CharField())
    notes = serializers.ListField(child=serializers.CharField())


class VariantSettingsSerializer(serializers.Serializer):
    key = serializers.CharField()
    kind = serializers.CharField()
    strategy = serializers.CharField(allow_blank=True)
    weight = serializers.FloatField()
    is_control = serializers.BooleanField()


class ExperimentSettingsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    placement = serializers.CharField()
    status = serializers.ChoiceField(choices=Experiment.Status.values)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    primary_metric = serializers.ChoiceField(choices=Experiment.Metric.values)
    minimum_detectable_effect = serializers.FloatField()
    alpha = serializers.FloatField()
    power = serializers.FloatField()
    allocation = serializers.ChoiceField(choices=Experiment.Allocation.values)
    allocation_weights = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Variant key -> planned share: the weights, or a bandit's latest allocation.")
    variants = VariantSettingsSerializer(many=True)


class VariantDaysSerializer(serializers.Serializer):
    subjects = serializers.ListField(child=serializers.IntegerField(),
                                     help_text="Subjects first exposed each day.")
    clicked = serializers.ListField(child=serializers.IntegerField())
    converted = serializers.ListField(child=serializers.IntegerField())
    revenue = serializers.ListField(child=serializers.FloatField())


class TimelineSerializer(serializers.Serializer):
    days = serializers.ListField(child=serializers.DateField(),
                                 help_text="Days of first exposure, in the site's TIME_ZONE.")
    variants = serializers.DictField(child=VariantDaysSerializer(),
                                     help_text="Variant key -> one value per day.")


class ExperimentResultsSerializer(serializers.Serializer):
    experiment = ExperimentSettingsSerializer()
    report = ReportSerializer()
    timeline = TimelineSerializer()


@extend_schema(
    summary="An experiment's results",
    description=("Staff only. The experiment, its report (estimates, comparisons with the "
                 "control, sample-ratio check, plan, verdict) and its daily timeline per "
                 "variant. docs/experiments.md explains the figures."),
    parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH,
                                 description="The experiment's id.")],
    responses={
        200: ExperimentResultsSerializer,
        401: error_response("Not signed in (with an authentication that asks for credentials)."),
        403: error_response("Not signed in, or not staff."),
        404: error_response("No experiment has this id."),
        409: error_response("A draft that cannot be analysed yet; the answer says why."),
        503: error_response("The database is unavailable; see Retry-After."),
    },
    examples=[OpenApiExample("Not found", response_only=True, status_codes=["404"],
                             value={"detail": "No experiment has the id '42'."})],
)
class ExperimentResultsView(DatabaseOutageHandling, DocumentedView, APIView):
    """One experiment's results, for staff."""

    permission_classes = [IsAdminUser]
    operation_id = "personalize_experiment_results"

    def get(self, request: Request, id: str) -> Response:
        """The experiment's payload, 404 for an unknown id, 409 for a draft not ready."""
        # any text reaches here, so that every unknown id gets the same JSON 404
        pk = int(id) if id.isdigit() and len(id) < 19 else None
        experiment = Experiment.objects.filter(pk=pk).first() if pk else None
        if experiment is None:
            raise exceptions.NotFound(f"No experiment has the id {id!r}.")
        try:
            payload: dict[str, Any] = experiment_payload(experiment)
        except ValueError as exc:
            raise Conflict(f"{experiment.name} cannot be analysed yet: {exc} "
                           "Add its variants in the admin.") from exc
        response = Response(payload)
        response["Cache-Control"] = "private, no-store"
        return response
