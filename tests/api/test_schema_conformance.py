"""Every response of the REST API conforms to its own OpenAPI schema (schemathesis).

schemathesis loads the schema from the app, generates requests for every
operation (valid and invalid ones) and runs all of its checks on each
response: no server error, every status code and content type documented,
every body valid against the documented schema, invalid input rejected.
Requests go through the WSGI app in process, against the test database.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from personalize.models import Placement
from tests.serving.fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db

#: A CSRF secret sent as the cookie and the header, so unsafe requests reach the views.
CSRF_TOKEN = "a" * 32


@pytest.fixture
def api_data(catalog_items, active_models):
    Placement.objects.create(name="home")
    Placement.objects.create(name="cart", heading="Complete your order", limit=3)
    # As Django's test client does: neither the start nor the end of a request may
    # close the connection that holds the test's transaction.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def expected_for_valid_data(*statuses: str) -> dict:
    return {"positive_data_acceptance": {"expected-statuses": ["2xx", *statuses]}}


#: Where a request the schema calls valid may still be refused, for a reason the schema
#: cannot state; every other operation must accept every valid request.
CONFIG = SchemathesisConfig.from_dict({"operations": [
    # ``item`` must name an item that exists (400 names the parameter); ``placement`` a
    # placement that exists (404); ``subject`` is for staff with the permission (403).
    {"include-operation-id": "personalize_recommendations",
     "checks": expected_for_valid_data("400", "403", "404")},
    # An event is stored only with consent, for an item that exists, with a value in the
    # range of its type, and ``subject`` only from servers: a batch of well-formed events
    # can all be refused (400, with the report saying why for each).
    {"include-path": "/api/personalize/events/", "include-method": "POST",
     "checks": expected_for_valid_data("400", "403", "429")},
    # Staff only: these requests come without a session (403), for ids that may not exist
    # (404); test_staff_results_match_the_schema below reads one as staff.
    {"include-operation-id": "personalize_experiment_results",
     "checks": expected_for_valid_data("403", "404")},
]})

schema = schemathesis.openapi.from_wsgi(
    "/api/personalize/schema/?format=json", WSGIHandler(), config=CONFIG)


@schema.parametrize()
@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_every_response_matches_the_schema(case, api_data):
    case.call_and_validate(headers={"X-CSRFToken": CSRF_TOKEN},
                           cookies={"csrftoken": CSRF_TOKEN})


def test_staff_results_match_the_schema(api_data):
    """The results endpoint answers staff with a body its schema describes (200 and 409)."""
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone
    from schemathesis.specs.openapi.checks import ignored_auth

    from personalize.models import Subject, SubjectOutcome
    from tests.experiments.factories import make_experiment, variant

    experiment = make_experiment("home", started_at=timezone.now() - timedelta(days=3))
    for n, (key, clicks, conversions, revenue) in enumerate(
            [("a", 1, 0, 0.0), ("a", 0, 0, 0.0), ("b", 2, 1, 30.0), ("b", 0, 1, 12.5)]):
        SubjectOutcome.objects.create(
            experiment=experiment, variant=variant(experiment, key),
            subject=Subject.objects.create(), exposures=1, clicks=clicks,
            first_exposed_at=timezone.now() - timedelta(days=n % 3), conversions=conversions,
            revenue=revenue)
    draft = make_experiment("home", status="draft", variants=[{"key": "only"}])
    client = Client()
    client.force_login(User.objects.create_user("ops", is_staff=True))
    cookies = {"sessionid": client.cookies["sessionid"].value}
    operation = schema["/api/personalize/experiments/{id}/results/"]["GET"]
    for pk, expected in [(experiment.pk, 200), (draft.pk, 409)]:
        # ignored_auth would resend the request without the session and take the
        # staff session we pass for a generated, invalid one
        response = operation.Case(path_parameters={"id": pk}).call_and_validate(
            cookies=cookies, excluded_checks=[ignored_auth])
        assert response.status_code == expected
