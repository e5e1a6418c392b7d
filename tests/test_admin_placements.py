"""The placement admin: strategy choices, filter validation, and "preview as subject"."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from personalize.models import Event, Placement, Subject
from personalize.serving.forms import PlacementForm, find_subject, strategy_choices
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import grant, make_model

pytestmark = pytest.mark.django_db

FORM_DATA = {"name": "home", "heading": "For you", "enabled": "on", "strategy": "ease",
             "fallback": "", "limit": 6, "diversity": 0.3, "filters": "{}", "cache_ttl": 60}


def test_strategy_choices_come_from_the_configured_strategies(settings):
    names = [value for value, _ in strategy_choices()]
    assert names[0] == "" and {"popular", "item_knn", "ease"} <= set(names)
    settings.PERSONALIZE = {**settings.PERSONALIZE, "STRATEGIES": {
        "popular": "personalize.strategies.popularity.Popularity"}, "LOAD_ENTRY_POINTS": False}
    assert [value for value, _ in strategy_choices()] == ["", "popular"]
    kept = strategy_choices("retired")
    assert kept[-1] == ("retired", "retired (not configured)")


def test_form_accepts_a_valid_placement(catalog_items):
    form = PlacementForm(data={**FORM_DATA, "filters": '{"exclude_event_types": ["purchase", '
                                                        '"view"], "pinned": ["t2"], '
                                                        '"include_categories": ["Tools"], '
                                                        '"blocked": ["not-yet-listed"]}'})
    assert form.is_valid(), form.errors
    placement = form.save()
    assert placement.strategy == "ease" and placement.filters["pinned"] == ["t2"]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("strategy", "nonexistent", "Select a valid choice"),
    ("filters", '{"colour": "red"}', "colour: unknown filter key"),
    ("filters", '{"pinned": "x"}', "pinned: must be a list of non-empty strings"),
    ("filters", '["x"]', "filters: must be a JSON object"),
    ("filters", "{not json", "Enter a valid JSON"),
    ("diversity", 1.5, "less than or equal to 1"),
    ("limit", 0, "greater than or equal to 1"),
])
def test_form_rejects_bad_values(field, value, message):
    form = PlacementForm(data={**FORM_DATA, field: value})
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


@pytest.mark.parametrize(("filters", "messages"), [
    ('{"pinned": ["t2", "t22", "nothing-like-it"]}',
     ["pinned: no catalog item has the external id 't22' (did you mean 't2'?).",
      "pinned: no catalog item has the external id 'nothing-like-it'."]),
    ('{"include_categories": ["Tols"]}',
     ["include_categories: no catalog item is in the category 'Tols' (did you mean 'Tools'?)."]),
    ('{"exclude_categories": ["Books", "Garden"]}',
     ["exclude_categories: no catalog item is in the category 'Garden'."]),
])
def test_form_rejects_pinned_items_and_categories_that_do_not_exist(catalog_items, filters,
                                                                   messages):
    form = PlacementForm(data={**FORM_DATA, "filters": filters})
    assert not form.is_valid()
    assert form.errors["filters"] == messages


def test_form_sees_items_added_since_the_catalog_was_last_read(
    catalog_items, django_capture_on_commit_callbacks
):
    from personalize.models import Item

    assert not PlacementForm(data={**FORM_DATA, "filters": '{"pinned": ["new"]}'}).is_valid()
    with django_capture_on_commit_callbacks(execute=True):
        Item.objects.create(external_id="new", title="New", categories=["Garden"])
    form = PlacementForm(data={**FORM_DATA, "filters": '{"pinned": ["new"], '
                                                       '"include_categories": ["Garden"]}'})
    assert form.is_valid(), form.errors


def test_form_accepts_an_empty_heading(catalog_items):
    form = PlacementForm(data={**FORM_DATA, "heading": ""})
    assert form.is_valid(), form.errors
    assert form.save().heading == ""


def test_admin_add_page_lists_strategies(admin_client):
    page = admin_client.get(reverse("admin:personalize_placement_add")).content.decode()
    assert '<select name="strategy"' in page and '<option value="item_knn">' in page
    response = admin_client.post(reverse("admin:personalize_placement_add"), FORM_DATA)
    assert response.status_code == 302
    assert Placement.objects.get(name="home").strategy == "ease"


def test_change_page_links_to_the_preview(admin_client):
    placement = Placement.objects.create(name="home")
    page = admin_client.get(reverse("admin:personalize_placement_change", args=[placement.pk]))
    assert reverse("admin:personalize_placement_preview", args=[placement.pk]) in \
        page.content.decode()


def test_find_subject_by_key_username_email_and_id(db):
    user = User.objects.create_user("ada", email="ada@example.com")
    subject = Subject.objects.create(user=user)
    anon = Subject.objects.create(visitor_id="v1")
    assert find_subject(anon.key) == anon
    assert find_subject("ada") == subject
    assert find_subject("ADA@example.com") == subject
    assert find_subject(str(user.pk)) == subject
    assert find_subject("nobody") is None and find_subject("  ") is None


@pytest.fixture
def ada(catalog_items, active_models):
    user = User.objects.create_user("ada")
    subject = Subject.objects.create(user=user)
    grant(subject)
    Event.objects.create(subject=subject, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["t4"].pk])
    return subject


def test_preview_shows_the_block_and_explanations(admin_client, ada):
    placement = Placement.objects.create(name="home", heading="Picked for <you>", limit=3)
    url = reverse("admin:personalize_placement_preview", args=[placement.pk])
    assert admin_client.get(url).status_code == 200
    page = admin_client.get(url, {"subject": "ada"}).content.decode()
    assert 'data-personalize-placement="home"' in page
    assert "Picked for &lt;you&gt;" in page
    assert "Because you viewed Book 1" in page
    assert "item_knn" in page and "Pipeline stages" in page
    assert ada.key in page


def test_a_preview_is_not_an_exposure(admin_client, ada):
    from personalize.models import Exposure
    from tests.experiments.factories import grant_analytics

    grant_analytics(ada)
    placement = Placement.objects.create(name="home", limit=3)
    url = reverse("admin:personalize_placement_preview", args=[placement.pk])
    page = admin_client.get(url, {"subject": "ada"}).content.decode()
    assert 'data-personalize-placement="home"' in page
    assert "data-personalize-impression" not in page
    assert not Exposure.objects.exists()


def test_preview_of_an_unknown_subject_is_a_form_error(admin_client, ada):
    placement = Placement.objects.create(name="home")
    url = reverse("admin:personalize_placement_preview", args=[placement.pk])
    page = admin_client.get(url, {"subject": "ghost"}).content.decode()
    assert "No subject matches ghost." in page


def test_preview_needs_the_view_any_permission(ada):
    placement = Placement.objects.create(name="home")
    url = reverse("admin:personalize_placement_preview", args=[placement.pk])
    staff = User.objects.create_user("editor", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_placement"))
    client = Client()
    client.force_login(staff)
    assert client.get(url, {"subject": "ada"}).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_any_recommendations"))
    staff = User.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert client.get(url, {"subject": "ada"}).status_code == 200
    assert Client().get(url).status_code == 302  # to the login page
