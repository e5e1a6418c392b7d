"""The REST endpoints when the database is down or a kept connection went stale: 503, never 500.

A signed-in request looks up its session and user before any view code runs
(in DRF's authentication), so those lookups must answer 503 with
``Retry-After`` as well.
"""

from __future__ import annotations

import os

import pytest
from django import db
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connection
from django.test import Client

from personalize.consent.service import grant_consent
from personalize.models import Event, Item, Subject

pytestmark = pytest.mark.django_db

SERVICES = os.environ.get("PERSONALIZE_TEST_SERVICES") == "1"
EVENTS = "/api/personalize/events/"
ENDPOINTS = [
    ("post", EVENTS, {"type": "view", "item": "sku-1"}),
    ("get", "/api/personalize/consent/", None),
    ("post", "/api/personalize/consent/", {"purpose": "personalization", "granted": True}),
    ("get", "/api/personalize/me/data/", None),
    ("get", "/api/personalize/recommendations/", None),
    ("get", "/api/personalize/items/sku-1/similar/", None),
    ("get", "/api/personalize/schema/", None),
]


@pytest.fixture
def signed_in(db) -> Client:
    """A signed-in shopper who allows personalization (a session in the database)."""
    Item.objects.create(external_id="sku-1", title="Drill")
    user = get_user_model().objects.create_user("ada", password="pw")
    grant_consent(Subject.objects.create(user=user))
    client = Client()
    client.force_login(user)
    return client


def call(client: Client, method: str, url: str, body) -> object:
    if method == "get":
        return client.get(url)
    return client.post(url, body, content_type="application/json")


def unreachable(error: type[Exception]):
    """Every query fails as it does while the database server is down."""
    def refuse(execute, sql, params, many, context):
        raise error("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    return connection.execute_wrapper(refuse)


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content[:300]
    assert int(response["Retry-After"]) > 0
    # JSON from the endpoints, YAML from the schema view: a detail that says to retry
    assert b"retry later" in response.content


@pytest.mark.parametrize("error", [db.OperationalError, db.InterfaceError])
@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS,
                         ids=[f"{m} {u.split('/')[3]}" for m, u, _ in ENDPOINTS])
def test_database_down_is_503_for_a_signed_in_request(signed_in, method, url, body, error):
    with unreachable(error):
        response = call(signed_in, method, url, body)
    assert_unavailable(response)


def test_other_errors_still_reach_the_sites_exception_handler(signed_in, settings):
    settings.REST_FRAMEWORK = {**getattr(settings, "REST_FRAMEWORK", {}),
                               "EXCEPTION_HANDLER": "tests.api.test_errors.tagging_handler"}
    response = signed_in.get("/api/personalize/recommendations/?limit=abc")
    assert response.status_code == 400
    assert response.json()["tagged"] is True


def tagging_handler(exc, context):
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"tagged": True, **response.data}
    return response


@pytest.fixture
def reconnect_after(signed_in):
    """Drop a connection a test killed before the database is flushed (torn down first)."""
    yield
    connection.close()


@pytest.mark.services
@pytest.mark.skipif(not SERVICES, reason="needs PERSONALIZE_TEST_SERVICES=1 (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("health_checks", [False, True])
def test_a_stale_persistent_connection(signed_in, reconnect_after, monkeypatch, health_checks):
    """The database restarted under a web process that keeps its connections (CONN_MAX_AGE)."""
    import psycopg

    from tests.database import database_url

    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", health_checks)
    close_old_connections()  # what Django runs as a request starts
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])

    close_old_connections()  # the next request starts
    first = call(signed_in, *ENDPOINTS[0])
    if health_checks:  # the dead connection was found before use and replaced
        assert first.status_code == 200
    else:  # the first query meets the dead connection
        assert_unavailable(first)
        close_old_connections()  # the request ends: the broken connection is closed
        assert call(signed_in, *ENDPOINTS[0]).status_code == 200
    assert Event.objects.count() == 1
