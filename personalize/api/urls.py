"""Mount with ``path("api/personalize/", include("personalize.api.urls"))``."""

from django.urls import path

from personalize.api import consent, events, experiments, recommendations, schema

app_name = "personalize"

urlpatterns = [
    path("events/", events.EventIngestView.as_view(), name="events"),
    path("consent/", consent.ConsentView.as_view(), name="consent"),
    path("me/data/", consent.MyDataView.as_view(), name="my-data"),
    path(
        "recommendations/", recommendations.RecommendationsView.as_view(), name="recommendations"
    ),
    path(
        "items/<str:external_id>/similar/",
        recommendations.SimilarItemsView.as_view(),
        name="similar-items",
    ),
    path(
        "experiments/<str:id>/results/",
        experiments.ExperimentResultsView.as_view(),
        name="experiment-results",
    ),
    path("schema/", schema.SchemaView.as_view(), name="schema"),
    path("docs/", schema.DocsView.as_view(url_name="personalize:schema"), name="docs"),
]
