"""Every model shows in the admin; history cannot be edited there."""

import re
from datetime import UTC, datetime

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


@pytest.fixture
def shoppers(db):
    from django.contrib.auth import get_user_model

    item = Item.objects.create(external_id="x9", title="Drill")
    made = {}
    for name, minute in (("alice", 1), ("bob", 2)):
        subject = Subject.objects.create(user=get_user_model().objects.create(username=name))
        made[name] = Event.objects.create(
            subject=subject, item=item, event_type="view",
            timestamp=datetime(2026, 3, 4, 9, minute, 7, tzinfo=UTC))
    made["visitor"] = Event.objects.create(subject=Subject.objects.create(visitor_id="v9"),
                                           item=item, event_type="click")
    return made


def _event_rows(admin_client, **query):
    page = admin_client.get(reverse("admin:personalize_event_changelist"), query)
    assert page.status_code == 200
    return page.content.decode().split("<tbody>")[1].split("</tbody>")[0]


def test_events_are_found_by_the_shoppers_user_name(admin_client, shoppers):
    rows = _event_rows(admin_client, q="alice")
    assert f"/event/{shoppers['alice'].pk}/change/" in rows
    assert f"/event/{shoppers['bob'].pk}/change/" not in rows
    assert '<td class="field-username">alice</td>' in rows
    everyone = _event_rows(admin_client)
    assert everyone.count('<td class="field-username">') == 3
    assert '<td class="field-username">-</td>' in everyone  # an anonymous visitor


def test_list_times_are_dates_with_the_time_to_the_second(admin_client, shoppers):
    rows = _event_rows(admin_client, o="1")  # sortable: ordered by time, oldest first
    assert rows.index(">2026-03-04 09:01:07<") < rows.index(">2026-03-04 09:02:07<")
    for name, column in (("subject", "created"), ("subject", "last_seen"), ("item", "updated"),
                         ("event", "time")):
        page = admin_client.get(reverse(f"admin:personalize_{name}_changelist")).content.decode()
        cells = re.findall(rf'class="field-{column}[^"]*">(?:<a [^>]*>)?([^<]*)<', page)
        assert cells and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", c)
                             for c in cells), (name, cells)
