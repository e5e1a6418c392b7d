"""The experiment admin: variants checked against what serving can serve, start and stop."""

from __future__ import annotations

import pytest
from django.urls import reverse

from personalize.models import DailyRollup, Experiment, Exposure, Placement, Subject, Variant

pytestmark = pytest.mark.django_db

ADD = reverse("admin:personalize_experiment_add")
CHANGELIST = reverse("admin:personalize_experiment_changelist")


@pytest.fixture
def home():
    return Placement.objects.create(name="home")


def variant(n, key, kind="strategy", strategy="ease", config="{}", weight=1, control=False):
    data = {f"variants-{n}-key": key, f"variants-{n}-kind": kind,
            f"variants-{n}-strategy": strategy, f"variants-{n}-config": config,
            f"variants-{n}-weight": weight}
    if control:
        data[f"variants-{n}-is_control"] = "on"
    return data


def form_data(*variants, **fields):
    data = {"name": "Home: EASE vs popular", "description": "", "placement": "home",
            "primary_metric": "ctr", "minimum_detectable_effect": 0.1, "alpha": 0.05,
            "power": 0.8, "allocation": "fixed", "bandit_floor": 0.05,
            "variants-TOTAL_FORMS": len(variants), "variants-INITIAL_FORMS": 0,
            "variants-MIN_NUM_FORMS": 2, "variants-MAX_NUM_FORMS": 1000}
    for part in variants:
        data.update(part)
    data.update(fields)
    return data


def errors_of(response) -> str:
    assert response.status_code == 200, "the form was accepted"
    return response.content.decode()


def test_an_experiment_is_drafted_with_its_variants(admin_client, home):
    response = admin_client.post(ADD, form_data(
        variant(0, "popular", kind="popular", strategy="ease", control=True),
        variant(1, "ease", weight=2),
        variant(2, "tuned", kind="config", strategy="", config='{"strategy": "item_knn", '
                '"diversity": 0.3, "limit": 6}'),
    ))
    assert response.status_code == 302, response.content.decode()[:3000]
    experiment = Experiment.objects.get()
    assert experiment.status == "draft" and len(experiment.salt) == 16
    stored = {v.key: (v.kind, v.strategy, v.config, v.weight, v.is_control)
              for v in experiment.variants.all()}
    assert stored == {
        "popular": ("popular", "", {}, 1.0, True),  # what its kind ignores is not kept
        "ease": ("strategy", "ease", {}, 2.0, False),
        "tuned": ("config", "", {"strategy": "item_knn", "diversity": 0.3, "limit": 6},
                  1.0, False),
    }


@pytest.mark.parametrize(("variants", "message"), [
    ([variant(0, "a", control=True)], "at least two variants"),
    ([variant(0, "a", control=True), variant(1, "b", control=True)], "exactly one variant"),
    ([variant(0, "a"), variant(1, "b")], "exactly one variant"),
    ([variant(0, "a", control=True, weight=0), variant(1, "b")], "control needs a traffic"),
    ([variant(0, "a", control=True), variant(1, "b", strategy="")], "names the strategy"),
    ([variant(0, "a", control=True), variant(1, "b", strategy="nope")],
     "Select a valid choice. nope is not one of the available choices."),
    ([variant(0, "a", control=True),
      variant(1, "b", kind="config", strategy="", config='{"colour": 1}')], "colour: unknown key"),
    ([variant(0, "a", control=True),
      variant(1, "b", kind="config", strategy="", config='{"diversity": 2}')],
     "diversity: a number from 0 to 1"),
    ([variant(0, "a", control=True),
      variant(1, "b", kind="config", strategy="", config='{"fallback": "nope"}')],
     "fallback: &#x27;nope&#x27; is not a configured strategy"),
    ([variant(0, "a", control=True),
      variant(1, "b", kind="config", strategy="", config='{"filters": {"pinned": 3}}')],
     "filters: pinned: "),
])
def test_variants_that_cannot_be_served_are_refused(admin_client, home, variants, message):
    page = errors_of(admin_client.post(ADD, form_data(*variants)))
    assert message in page
    assert not Experiment.objects.exists()


def test_a_holdout_is_compared_on_conversions_or_revenue(admin_client, home):
    variants = (variant(0, "on", control=True), variant(1, "off", kind="holdout", strategy=""))
    page = errors_of(admin_client.post(ADD, form_data(*variants)))
    assert "its click-through rate is 0 by construction" in page
    response = admin_client.post(ADD, form_data(*variants, primary_metric="conversion"))
    assert response.status_code == 302
    assert Experiment.objects.get().variants.filter(kind="holdout").exists()


def test_the_placement_must_exist(admin_client, home):
    page = errors_of(admin_client.post(ADD, form_data(
        variant(0, "a", control=True), variant(1, "b"), placement="sidebar")))
    assert "No placement is named" in page and "sidebar" in page


def make_experiment(name="Home test", placement="home", status="draft"):
    experiment = Experiment.objects.create(name=name, placement=placement, status=status)
    Variant.objects.create(experiment=experiment, key="a", kind="popular", is_control=True)
    Variant.objects.create(experiment=experiment, key="b", strategy="ease")
    return experiment


def act(client, action, *experiments):
    return client.post(CHANGELIST, {"action": action,
                                    "_selected_action": [e.pk for e in experiments]},
                       follow=True)


def test_start_and_stop(admin_client, home):
    experiment = make_experiment()
    page = act(admin_client, "start_experiments", experiment).content.decode()
    assert "Home test started." in page
    experiment.refresh_from_db()
    assert experiment.status == "running" and experiment.started_at is not None

    other = make_experiment("Second test")
    page = act(admin_client, "start_experiments", other).content.decode()
    assert "already runs on the placement" in page
    assert Experiment.objects.get(pk=other.pk).status == "draft"

    page = act(admin_client, "stop_experiments", experiment).content.decode()
    assert "Home test stopped." in page
    experiment.refresh_from_db()
    assert experiment.status == "stopped" and experiment.ended_at >= experiment.started_at
    page = act(admin_client, "start_experiments", experiment).content.decode()
    assert "only a draft can start" in page


def test_a_started_experiment_keeps_its_design(admin_client, home):
    experiment = make_experiment(status="running")
    page = admin_client.get(
        reverse("admin:personalize_experiment_change", args=[experiment.pk])).content.decode()
    assert 'name="variants-0-weight"' not in page  # the variants are shown, not editable
    assert 'name="primary_metric"' not in page
    assert 'name="name"' in page  # the name and description may still change


def test_exposures_and_rollups_are_listed_read_only(admin_client, home):
    subject = Subject.objects.create(visitor_id="v1")
    Exposure.objects.create(subject=subject, placement="home", strategy="ease", items=[1, 2],
                            source="tag")
    DailyRollup.objects.create(day="2026-12-01", placement="home", strategy="ease",
                               impressions=200, clicks=7)
    page = admin_client.get(reverse("admin:personalize_exposure_changelist")).content.decode()
    assert "ease" in page and ">2<" in page
    page = admin_client.get(reverse("admin:personalize_dailyrollup_changelist")).content.decode()
    assert "3.50%" in page
    assert admin_client.get(reverse("admin:personalize_exposure_add")).status_code == 403
