"""GET /api/personalize/experiments/<id>/results/: staff only, the report and its timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from personalize.models import Experiment, Subject, SubjectOutcome, Variant
from tests.experiments.factories import make_experiment, variant

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def url(pk: object) -> str:
    return f"/api/personalize/experiments/{pk}/results/"


@pytest.fixture(autouse=True)
def now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("ops", is_staff=True))
    return client


@pytest.fixture
def experiment() -> Experiment:
    experiment = make_experiment("home", started_at=datetime(2026, 3, 2, tzinfo=UTC),
                                 name="home: ease vs knn")
    for key, day, clicks, conversions, revenue in [
            ("a", 2, 1, 0, 0.0), ("a", 2, 0, 0, 0.0), ("b", 2, 2, 1, 30.0), ("b", 4, 0, 0, 0.0)]:
        SubjectOutcome.objects.create(
            experiment=experiment, variant=variant(experiment, key), subject=Subject.objects.create(),
            first_exposed_at=datetime(2026, 3, day, 10, tzinfo=UTC), exposures=1, clicks=clicks,
            conversions=conversions, revenue=revenue)
    return experiment


def test_staff_get_the_experiment_its_report_and_its_timeline(staff, experiment):
    response = staff.get(url(experiment.pk))
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    body = response.json()
    assert body["experiment"] == {
        "id": experiment.pk, "name": "home: ease vs knn", "placement": "home",
        "status": "running", "started_at": "2026-03-02T00:00:00+00:00", "ended_at": None,
        "primary_metric": "ctr", "minimum_detectable_effect": 0.1, "alpha": 0.05,
        "power": 0.8, "allocation": "fixed", "allocation_weights": {"a": 1.0, "b": 1.0},
        "variants": [
            {"key": "a", "kind": "strategy", "strategy": "item_knn", "weight": 1.0,
             "is_control": True},
            {"key": "b", "kind": "strategy", "strategy": "ease", "weight": 1.0,
             "is_control": False}],
    }
    assert body["timeline"] == {
        "days": ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"],
        "variants": {
            "a": {"subjects": [2, 0, 0, 0], "clicked": [1, 0, 0, 0], "converted": [0, 0, 0, 0],
                  "revenue": [0.0, 0.0, 0.0, 0.0]},
            "b": {"subjects": [1, 0, 1, 0], "clicked": [1, 0, 0, 0], "converted": [1, 0, 0, 0],
                  "revenue": [30.0, 0.0, 0.0, 0.0]},
        },
    }
    report = body["report"]
    assert report["design"]["metric"] == "ctr" and report["interim"] is True
    assert [v["key"] for v in report["variants"]] == ["a", "b"]
    assert report["variants"][1]["ctr"] == {
        "successes": 1, "n": 2, "rate": 0.5, "interval": report["variants"][1]["ctr"]["interval"]}
    assert report["verdict"].startswith("not enough data")


@pytest.mark.parametrize("user", [None, "visitor"])
def test_anonymous_and_non_staff_users_are_refused(experiment, user):
    client = Client()
    if user:
        client.force_login(User.objects.create_user(user))
    response = client.get(url(experiment.pk))
    assert response.status_code == 403  # session authentication first: 403, not 401
    assert "experiment" not in response.json() and response.json()["detail"]


@pytest.mark.parametrize("pk", ["999999", "abc", "-1", "99999999999999999999999"])
def test_an_unknown_id_is_a_json_404(staff, pk):
    response = staff.get(url(pk))
    assert response.status_code == 404
    assert response.json() == {"detail": f"No experiment has the id {pk!r}."}


def test_a_draft_without_a_control_is_a_409_saying_why(staff):
    draft = make_experiment("home", status=Experiment.Status.DRAFT, name="draft",
                            variants=[{"key": "a"}, {"key": "b"}])
    Variant.objects.filter(experiment=draft).update(is_control=False)
    response = staff.get(url(draft.pk))
    assert response.status_code == 409
    assert response.json() == {"detail": "draft cannot be analysed yet: An experiment needs "
                                         "exactly one control variant. Add its variants in "
                                         "the admin."}


def test_a_draft_with_one_variant_is_a_409(staff):
    draft = make_experiment("home", status=Experiment.Status.DRAFT, variants=[{"key": "a"}])
    response = staff.get(url(draft.pk))
    assert response.status_code == 409
    assert "needs at least two variants" in response.json()["detail"]


def test_an_experiment_without_exposures_answers_an_empty_timeline(staff):
    experiment = make_experiment("home", status=Experiment.Status.DRAFT)
    body = staff.get(url(experiment.pk)).json()
    assert body["timeline"] == {"days": [], "variants": {
        "a": {"subjects": [], "clicked": [], "converted": [], "revenue": []},
        "b": {"subjects": [], "clicked": [], "converted": [], "revenue": []}}}
    assert body["report"]["verdict"] == "no data yet: no subject has been exposed"
    json.dumps(body, allow_nan=False)  # strict JSON: no NaN or infinity anywhere
