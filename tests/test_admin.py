"""Every model shows in the admin; history cannot be edited there."""

import pytest
from django.urls import reverse

from personalize.models import ConsentRecord, Event, Item, ModelVersion, Placement, Subject

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows():
    subject = Subject.objects.create(visitor_id="v")
    item = Item.objects.create(external_id="x1", title="<b>Saw</b>", categories=["Tools"])
    event = Event.objects.create(subject=subject, item=item, event_type="view")
    consent = ConsentRecord.objects.create(subject=subject, purpose="personalization",
                                           granted=True, policy_version="1", source="banner")
    placement = Placement.objects.create(name="home")
    version = ModelVersion.objects.create(strategy="ease", version=1, status="active",
                                          metrics={"ndcg@10": 0.48}, artifact_size=2048)
    return {Subject: subject, Item: item, Event: event, ConsentRecord: consent,
            Placement: placement, ModelVersion: version}


@pytest.mark.parametrize("model", [Subject, Item, Event, ConsentRecord, Placement, ModelVersion])
def test_changelist_and_change_view_render(admin_client, rows, model):
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    change = admin_client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[rows[model].pk])
    )
    assert change.status_code == 200


def test_item_title_is_escaped_in_the_changelist(admin_client, rows):
    page = admin_client.get(reverse("admin:personalize_item_changelist")).content.decode()
    assert "&lt;b&gt;Saw&lt;/b&gt;" in page and "<b>Saw</b>" not in page


def test_model_version_list_shows_metrics_and_size(admin_client, rows):
    page = admin_client.get(reverse("admin:personalize_modelversion_changelist")).content.decode()
    assert '<td class="field-ndcg_10">0.480</td>' in page  # metrics are columns
    assert "2.0\xa0KB" in page


@pytest.mark.parametrize("model", [Event, ConsentRecord])
def test_history_cannot_be_added_or_changed(admin_client, rows, model):
    opts = model._meta
    add = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    assert add.status_code == 403
    obj = rows[model]
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    admin_client.post(url, {})
    fresh = model.objects.get(pk=obj.pk)
    assert fresh.subject_id == obj.subject_id


def test_placements_are_editable(admin_client, rows):
    url = reverse("admin:personalize_placement_change", args=[rows[Placement].pk])
    page = admin_client.get(url).content.decode()
    assert 'name="heading"' in page
