"""The ModelVersion admin: metrics side by side, train / activate / roll back, trend plots."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from personalize.models import ModelVersion
from personalize.serving import loader
from personalize.serving.loader import get_active_model
from personalize.training import service, tasks
from personalize.training.plots import sparkline_svg
from tests.training.conftest import (
    create_catalog,
    make_events,
    use_strategies,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_process_state():
    loader.clear_loaded()
    yield
    loader.clear_loaded()

CHANGELIST = "admin:personalize_modelversion_changelist"


@pytest.fixture
def trained(settings, db):
    use_strategies(settings)
    make_events(create_catalog())
    service.train_strategy("cooc")
    service.train_strategy("cooc", force=True)
    return {v.version: v for v in ModelVersion.objects.filter(strategy="cooc")}


def _action(client, action, versions):
    return client.post(reverse(CHANGELIST), {
        "action": action, "_selected_action": [v.pk for v in versions],
    }, follow=True)


def test_changelist_shows_metrics_side_by_side_and_trends(admin_client, trained):
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    for header in ("NDCG@10", "Hit rate@10", "Recall@10", "Precision@10", "Coverage@10"):
        assert f"<span>{header}</span>" in page, header
    assert ">Artifact size</a>" in page
    v2 = trained[2]
    assert f'<td class="field-ndcg_10">{v2.metrics["ndcg@10"]:.3f}</td>' in page
    assert f'<td class="field-hit_rate_10">{v2.metrics["hit_rate@10"]:.3f}</td>' in page
    assert f'<td class="field-fit_time">{v2.fit_seconds:.2f} s</td>' in page
    assert ">Total time</a>" in page  # sortable, by total_seconds
    assert "<strong>cooc</strong> ndcg@10 <svg" in page
    assert page.count('class="personalize-sparkline"') == 1


def test_change_view_plots_ndcg_across_versions(admin_client, trained):
    url = reverse("admin:personalize_modelversion_change", args=[trained[1].pk])
    page = admin_client.get(url).content.decode()
    svg = re.search(r'<svg [^>]*class="personalize-sparkline".*?</svg>', page, re.S).group(0)
    assert svg.count("<circle") == 3  # two versions, the one shown highlighted
    assert 'fill="#c62828"' in svg
    assert "ndcg@10 of cooc v1-v2" in svg
    assert "<th>ndcg@10</th>" in page  # the metrics table


def test_train_now_queues_each_strategy_once(admin_client, trained):
    with mock.patch.object(tasks.train_strategy, "delay") as delay:
        response = _action(admin_client, "train_now", [trained[1], trained[2]])
    delay.assert_called_once_with("cooc", force=True)
    assert "Training queued for cooc." in response.content.decode()


def test_train_now_runs_with_eager_celery(admin_client, trained):
    _action(admin_client, "train_now", [trained[2]])
    assert ModelVersion.objects.filter(strategy="cooc").count() == 3


def test_train_now_reports_a_broker_that_is_down(admin_client, trained):
    with mock.patch.object(tasks.train_strategy, "delay", side_effect=OSError("refused")):
        response = _action(admin_client, "train_now", [trained[2]])
    assert "Could not queue cooc: refused" in response.content.decode()


def test_roll_back_to_an_earlier_version(admin_client, trained):
    response = _action(admin_client, "roll_back", [trained[1]])
    assert "Now live: cooc v1." in response.content.decode()
    v1 = ModelVersion.objects.get(pk=trained[1].pk)
    assert v1.status == "active"
    assert v1.note.startswith("Rolled back to v1 by admin in the admin (live was v2).")
    assert ModelVersion.objects.get(pk=trained[2].pk).status == "retired"
    assert get_active_model("cooc").version == 1


def test_roll_back_refuses_a_newer_version(admin_client, trained):
    response = _action(admin_client, "roll_back", [trained[2]])
    assert "is not older than the live version" in response.content.decode()
    assert ModelVersion.objects.get(pk=trained[2].pk).status == "active"


def test_activate_overrides_the_gate(admin_client, trained):
    ModelVersion.objects.filter(pk=trained[1].pk).update(status="rejected")
    _action(admin_client, "activate", [trained[1]])
    assert ModelVersion.objects.get(pk=trained[1].pk).status == "active"


def test_activate_refuses_two_versions_of_one_strategy(admin_client, trained):
    response = _action(admin_client, "activate", [trained[1], trained[2]])
    assert "Choose one version per strategy." in response.content.decode()


def test_activate_refuses_a_failed_version(admin_client, trained):
    failed = ModelVersion.objects.create(strategy="cooc", version=3, status="failed")
    response = _action(admin_client, "activate", [failed])
    assert "has no servable artifact" in response.content.decode()


def test_staff_without_permission_cannot_train_or_activate(client, trained):
    staff = User.objects.create_user("viewer", password="x", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    client.force_login(staff)
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "train_now" not in page and "roll_back" not in page


def test_sparkline_handles_gaps_and_flat_series():
    assert sparkline_svg([]) == "" and sparkline_svg([None]) == ""
    flat = sparkline_svg([0.5, 0.5])
    assert flat.count("<circle") == 2
    gapped = sparkline_svg([0.1, None, 0.3, 0.2], highlight=2)
    assert gapped.count("<polyline") == 2 and gapped.count("<circle") == 4
    assert "<script" not in sparkline_svg([0.1], label="<script>")
