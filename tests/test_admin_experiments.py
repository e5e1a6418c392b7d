"""The experiment admin: variants checked against what serving can serve, start and stop."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from personalize.experiments.results import experiment_report
from personalize.models import (
    AllocationSnapshot,
    DailyRollup,
    Experiment,
    Exposure,
    Placement,
    Subject,
    Variant,
)
from tests.experiments import factories

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


# --- the results page ----------------------------------------------------------------------

def results_url(experiment) -> str:
    return reverse("admin:personalize_experiment_results", args=[experiment.pk])


def running(**fields):
    """A running 50/50 test of ``b`` against the control ``a`` on the home placement."""
    return factories.make_experiment(name="Home results", **fields)


def outcomes(experiment, key, clicked, subjects, days_ago=2, revenue=0.0):
    """``subjects`` first exposed ``days_ago`` days ago, the first ``clicked`` of them clicked
    (and bought, for ``revenue`` each)."""
    rows = [(1, 1, revenue) if n < clicked else (0, 0, 0.0) for n in range(subjects)]
    start = (timezone.localtime().replace(hour=1, minute=0, second=0, microsecond=0)
             - timedelta(days=days_ago))
    factories.add_outcomes(experiment, key, rows, start=start, step=timedelta(seconds=20))


def test_staff_see_the_verdict_the_tables_and_the_charts(admin_client, home):
    experiment = running(minimum_detectable_effect=1.0)
    outcomes(experiment, "a", 28, 400, revenue=10.0)
    outcomes(experiment, "b", 84, 400, revenue=12.0)
    outcomes(experiment, "b", 1, 2, days_ago=1)  # a second day on the charts
    outcomes(experiment, "a", 1, 3, days_ago=1)
    report = experiment_report(experiment)
    assert report.horizon_day == 0  # the planned sample was reached on the first day

    page = admin_client.get(results_url(experiment)).content.decode()
    assert "verdict--win" in page
    assert "b beats a on click-through rate, +200% [" in page
    assert 'data-variant="a"' in page and 'data-variant="b"' in page
    assert "7.0% [" in page and "21.0% [" in page  # the CTR of each, with its interval
    assert "0.70 [" in page and "2.52 [" in page  # revenue per subject: 28 x 10 / 400, 84 x 12 / 400
    assert "400 <small>(403 exposed)</small>" in page  # the horizon day's subjects, of all
    assert "Conversion rate" in page and "Revenue per subject" in page
    assert page.count('data-testid="comparisons"') == 3  # the primary metric, then two more
    assert "Holm-adjusted p" not in page  # one comparison: nothing to adjust
    assert page.count('class="personalize-chart"') == 2  # cumulative lift, daily CTR
    assert "Cumulative lift on click-through rate" in page
    assert "Traffic allocation" not in page
    assert "final" in page and "The planned sample was reached on" in page
    assert "minimum detectable effect: +100% (relative)" in page


def test_an_interim_report_shows_its_plan_and_badge(admin_client, home):
    experiment = running()
    outcomes(experiment, "a", 10, 200)
    outcomes(experiment, "b", 12, 200)
    page = admin_client.get(results_url(experiment)).content.decode()
    assert "verdict--pending" in page and ">interim<" in page
    plan = experiment_report(experiment).plan
    assert f"{plan.planned['a']}</td>" in page  # the planned sample per variant
    assert "of the planned sample" in page and "more days" in page


def test_three_variants_show_holm_adjusted_p_values(admin_client, home):
    experiment = factories.make_experiment(name="Three", variants=[
        {"key": "a", "strategy": "item_knn"}, {"key": "b", "strategy": "ease"},
        {"key": "c", "kind": "popular"}])
    for key, clicked in (("a", 10), ("b", 14), ("c", 12)):
        outcomes(experiment, key, clicked, 100)
    page = admin_client.get(results_url(experiment)).content.decode()
    assert "Holm-adjusted p" in page
    assert page.count('class="personalize-chart"') == 2


def test_a_mismatched_split_is_a_warning(admin_client, home):
    experiment = running()
    outcomes(experiment, "a", 10, 300)
    outcomes(experiment, "b", 10, 150)
    page = admin_client.get(results_url(experiment)).content.decode()
    assert "verdict--warning" in page
    assert 'data-testid="warning"' in page and "Sample ratio mismatch: 300 / 150" in page


def test_a_thompson_experiment_shows_its_allocation_history(admin_client, home):
    experiment = running(allocation=Experiment.Allocation.THOMPSON)
    outcomes(experiment, "a", 10, 100)
    outcomes(experiment, "b", 20, 100)
    AllocationSnapshot.objects.create(experiment=experiment, weights={"a": 0.5, "b": 0.5})
    AllocationSnapshot.objects.create(experiment=experiment, weights={"a": 0.2, "b": 0.8})
    page = admin_client.get(results_url(experiment)).content.decode()
    assert "Traffic allocation (Thompson sampling)" in page
    assert page.count('class="personalize-chart"') == 3
    assert "80%" in page  # the top tick of the shares


def test_a_draft_or_an_unexposed_experiment_says_so_instead_of_charts(admin_client, home):
    draft = make_experiment()
    page = admin_client.get(results_url(draft)).content.decode()
    assert "This experiment is a draft" in page and "personalize-chart" not in page
    page = admin_client.get(results_url(running())).content.decode()
    assert "No subject has been exposed" in page and "personalize-chart" not in page


def test_the_results_are_linked_from_the_list_and_the_form(admin_client, home):
    experiment = make_experiment()
    url = results_url(experiment)
    assert url in admin_client.get(CHANGELIST).content.decode()
    change = reverse("admin:personalize_experiment_change", args=[experiment.pk])
    assert f'href="{url}"' in admin_client.get(change).content.decode()


def test_only_staff_who_may_view_experiments_see_the_results(client, home, django_user_model):
    experiment = make_experiment()
    url = results_url(experiment)
    response = client.get(url)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    client.force_login(django_user_model.objects.create_user("shopper", password="x"))
    response = client.get(url)
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_experiment"))
    assert client.get(url).status_code == 200


def test_an_unknown_experiment_is_not_found(admin_client):
    response = admin_client.get(reverse("admin:personalize_experiment_results", args=[987654]))
    assert response.status_code == 404
