"""``manage.py personalize_report``: the placement table and experiments, or one experiment."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from personalize.models import DailyRollup, Experiment, Subject, SubjectOutcome
from tests.experiments.factories import make_experiment, variant

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def run(*args: str) -> str:
    out = StringIO()
    call_command("personalize_report", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def experiment() -> Experiment:
    experiment = make_experiment("home", name="home: ease vs knn",
                                 started_at=datetime(2024, 3, 8, tzinfo=UTC))
    for key, clicks, conversions, revenue in [("a", 1, 0, 0.0), ("a", 0, 0, 0.0),
                                              ("b", 1, 1, 25.0), ("b", 1, 0, 0.0)]:
        SubjectOutcome.objects.create(
            experiment=experiment, variant=variant(experiment, key),
            subject=Subject.objects.create(), first_exposed_at=datetime(2024, 3, 9, tzinfo=UTC),
            exposures=1, clicks=clicks, conversions=conversions, revenue=revenue)
    return experiment


@pytest.fixture
def rollups() -> None:
    DailyRollup.objects.create(day=date(2024, 3, 10), placement="home", strategy="ease",
                               impressions=2000, subjects=400, clicks=50, add_to_carts=4,
                               conversions=2, revenue=1234.5, items_shown=40)
    DailyRollup.objects.create(day=date(2024, 3, 2), placement="home", strategy="popular",
                               impressions=100, subjects=100, clicks=1, items_shown=10)


def test_the_overview_is_the_placement_table_and_a_line_per_experiment(rollups, experiment):
    make_experiment("cart", status=Experiment.Status.DRAFT, name="cart draft",
                    variants=[{"key": "only"}])
    out = run("--days", "7")
    assert out.splitlines()[0] == "Placement performance, 2024-03-04 to 2024-03-10 (7 days)"
    assert (
        "placement / strategy  impressions  subject-days  clicks    CTR  add-to-carts  "
        "conversions  conv. rate   revenue  rev./subject-day  items max/mean") in out
    assert ("home                        2,000           400      50  2.50%             4  "
            "          2       0.10%  1,234.50              3.09       40 / 40.0") in out
    assert "  ease   " in out and "popular" not in out  # 2 March is outside the 7 days
    lines = out.splitlines()
    assert f"  {experiment.pk}  home: ease vs knn (home, running): not enough data" in "\n".join(
        lines)
    assert any(line.endswith("(cart, draft): cannot be analysed yet: An experiment needs at "
                             "least two variants.") for line in lines)


def test_the_overview_in_json_is_the_performance_data_with_the_experiments(rollups, experiment):
    data = json.loads(run("--format", "json"))
    assert data["first_day"] == "2024-02-10" and data["last_day"] == "2024-03-10"
    (home,) = data["placements"]
    assert home["impressions"] == 2100 and home["clicks"] == 51
    assert [s["strategy"] for s in home["strategies"]] == ["ease", "popular"]
    assert home["running_experiment"] == {"id": experiment.pk, "name": "home: ease vs knn"}
    assert len(home["daily"]["impressions"]) == 30 and home["daily"]["impressions"][-1] == 2000
    (line,) = data["experiments"]
    assert line["id"] == experiment.pk and line["verdict"].startswith("not enough data")


def test_without_data_the_overview_says_how_to_get_some():
    out = run()
    assert "No recommendation block was shown in these days." in out
    assert "manage.py personalize_rollup" in out
    assert "none yet: create one in the admin" in out


def test_one_experiment_verdict_plan_and_variant_table(experiment):
    out = run("--experiment", str(experiment.pk))
    assert out.startswith(f"home: ease vs knn (id {experiment.pk}) on home: running, started "
                          "2024-03-08\n")
    assert "Primary metric: click-through rate; minimum detectable effect +10%" in out
    assert "\nVerdict: not enough data" in out and "\nNote: Interim estimates" in out
    assert "\nPlan: " in out
    assert ("variant      subjects  exposed      CTR  conv. rate  revenue/subject  "
            "lift on click-through rate     p") in out
    assert "+100.0% [33.3%, 957.9%]  0.25" in out
    assert "a (control)         2        2   50.00%       0.00%             0.00" in out
    assert "b                   2        2  100.00%      50.00%            12.50" in out


def test_one_experiment_in_json_is_the_api_payload(experiment):
    printed = json.loads(run("--experiment", str(experiment.pk), "--format", "json"))
    client = Client()
    client.force_login(User.objects.create_user("ops", is_staff=True))
    answered = client.get(f"/api/personalize/experiments/{experiment.pk}/results/").json()
    assert printed == answered
    assert printed["timeline"]["variants"]["b"]["revenue"] == [25.0, 0.0]  # 9 March, and today


@pytest.mark.parametrize(("args", "message"), [
    (["--experiment", "999"], "No experiment has the id 999. There is none yet."),
    (["--days", "0"], "--days '0' is not a number of days from 1 to 366."),
    (["--days", "many"], "--days 'many' is not a number of days from 1 to 366."),
    (["--days", "400"], "--days '400' is not a number of days from 1 to 366."),
])
def test_clear_errors(args, message):
    with pytest.raises(CommandError, match=message.replace(".", r"\.")):
        run(*args)


def test_an_unknown_id_names_the_known_ones(experiment):
    with pytest.raises(CommandError, match=f"Known: {experiment.pk} \\(home: ease vs knn\\)"):
        run("--experiment", "999")


def test_a_draft_without_a_control_says_why(experiment):
    draft = make_experiment("cart", status=Experiment.Status.DRAFT, name="cart draft",
                            variants=[{"key": "a"}])
    with pytest.raises(CommandError, match="cart draft cannot be analysed yet: An experiment "
                                           "needs at least two variants"):
        run("--experiment", str(draft.pk))


def test_days_with_an_experiment_is_refused(experiment):
    with pytest.raises(CommandError, match="Leave out --days or --experiment"):
        run("--experiment", str(experiment.pk), "--days", "7")

