"""REST: the visitor's recommendations, similar items, validation, permissions, schema."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from personalize.models import Event, Placement, Subject
from tests.serving.fixtures import *  # noqa: F403
from tests.serving.fixtures import grant, make_model

pytestmark = pytest.mark.django_db
URL = "/api/personalize/recommendations/"


def similar_url(external_id: str) -> str:
    return f"/api/personalize/items/{external_id}/similar/"


def close(response) -> None:
    """What the server does after sending the last byte (without closing the test's DB
    connection, as Django's test client does)."""
    from django.core.signals import request_finished
    from django.db import close_old_connections

    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def home(db) -> Placement:
    """The API serves placements that exist: "home" does in these tests."""
    return Placement.objects.create(name="home", heading="")


@pytest.fixture
def shopper(catalog_items, active_models):
    """A signed-in user with consent, a history and a trained model."""
    user = User.objects.create_user("shopper", password="pw")
    subject = Subject.objects.create(user=user)
    grant(subject)
    Event.objects.create(subject=subject, item=catalog_items["b1"], event_type="view")
    active_models["item_knn"] = make_model("item_knn", [catalog_items["t3"].pk,
                                                        catalog_items["b2"].pk])
    client = Client()
    client.force_login(user)
    return client, subject


def test_anonymous_visitor_gets_the_popular_block(catalog_items, active_models):
    response = Client().get(URL, {"limit": 3})
    assert response.status_code == 200
    data = response.json()
    assert data["placement"] == "home" and data["heading"] == "Recommended for You"
    assert data["personalized"] is False
    assert [r["item"] for r in data["results"]] == ["b1", "b2", "b3"]
    first = data["results"][0]
    assert set(first) == {"item", "position", "title", "url", "categories", "attributes",
                          "score", "strategy", "personalized", "explanation"}
    assert [r["position"] for r in data["results"]] == [1, 2, 3]
    assert data["impression"] is None  # no subject: nothing logged
    assert first["categories"] == ["Books"] and first["strategy"] == "popular"
    assert response["Cache-Control"] == "private, no-store"


def test_signed_in_user_gets_their_own_block(shopper):
    client, _ = shopper
    data = client.get(URL, {"placement": "home", "limit": 2}).json()
    assert data["personalized"] is True
    assert [r["item"] for r in data["results"]] == ["t3", "b2"]
    assert data["results"][0]["explanation"] == "Because you viewed Book 1"


def test_item_context_excludes_the_page_item(shopper):
    client, _ = shopper
    data = client.get(URL, {"limit": 2, "item": "t3"}).json()
    assert "t3" not in [r["item"] for r in data["results"]]


def test_placement_heading(catalog_items, active_models):
    Placement.objects.create(name="cart", heading="Complete your order", limit=2)
    data = Client().get(URL, {"placement": "cart"}).json()
    assert data["heading"] == "Complete your order" and len(data["results"]) == 2


@pytest.mark.parametrize(("params", "name"), [
    ({"limit": "0"}, "limit"),
    ({"limit": "abc"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"placement": "not a slug!"}, "placement"),
    ({"item": "no-such-item"}, "item"),
    ({"colour": "red"}, "colour"),
    ({"subject": "x" * 40}, "subject"),
])
def test_invalid_parameters_are_named(catalog_items, active_models, params, name):
    response = Client().get(URL, params)
    assert response.status_code == 400
    assert name in response.json()


def test_a_validated_query_string_still_checks_that_its_item_exists(
    catalog_items, active_models, django_capture_on_commit_callbacks
):
    assert Client().get(URL, {"limit": 2, "item": "b5"}).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        catalog_items["b5"].delete()
    Client().get(URL, {"limit": 3})  # a block computed since: the process knows the catalog
    response = Client().get(URL, {"limit": 2, "item": "b5"})
    assert response.status_code == 400 and "item" in response.json()


def test_a_validated_query_string_still_checks_its_strategy(
    catalog_items, active_models, settings
):
    assert Client().get(similar_url("b1"), {"strategy": "item_knn"}).status_code == 200
    settings.PERSONALIZE = {**settings.PERSONALIZE, "STRATEGIES": {
        "popular": "personalize.strategies.popularity.Popularity"}}
    response = Client().get(similar_url("b1"), {"strategy": "item_knn"})
    assert response.status_code == 400 and "strategy" in response.json()


def test_a_cache_hit_reads_no_item_row(shopper):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from personalize.serving import catalog

    client, _ = shopper
    first = client.get(URL, {"limit": 2}).json()
    catalog.clear()  # forget the item rows this process keeps
    with CaptureQueriesContext(connection) as queries:
        again = client.get(URL, {"limit": 2}).json()
    assert again == first
    assert not [q["sql"] for q in queries if "personalize_item" in q["sql"]]


def test_max_limit_is_read_at_call_time(catalog_items, active_models, settings):
    settings.PERSONALIZE = {**settings.PERSONALIZE, "MAX_LIMIT": 2}
    assert Client().get(URL, {"limit": 3}).status_code == 400
    assert Client().get(URL, {"limit": 2}).status_code == 200


def test_nobody_else_reads_another_subjects_block(shopper, catalog_items):
    _, subject = shopper
    # anonymous, a plain user, and staff without the permission
    assert Client().get(URL, {"subject": subject.key}).status_code == 403
    other = Client()
    other.force_login(User.objects.create_user("other"))
    assert other.get(URL, {"subject": subject.key}).status_code == 403
    staff = User.objects.create_user("staff", is_staff=True)
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.get(URL, {"subject": subject.key}).status_code == 403
    # the permission without staff status is not enough either
    perm = Permission.objects.get(codename="view_any_recommendations")
    insider = User.objects.create_user("insider")
    insider.user_permissions.add(perm)
    insider_client = Client()
    insider_client.force_login(insider)
    assert insider_client.get(URL, {"subject": subject.key}).status_code == 403


def test_staff_with_the_permission_may_pass_subject(shopper):
    _, subject = shopper
    staff = User.objects.create_user("support", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_any_recommendations"))
    client = Client()
    client.force_login(staff)
    data = client.get(URL, {"subject": subject.key, "limit": 1}).json()
    assert data["results"][0]["item"] == "t3" and data["personalized"]
    unknown = client.get(URL, {"subject": "f" * 32})
    assert unknown.status_code == 400 and "subject" in unknown.json()


def test_superuser_may_pass_subject(shopper):
    _, subject = shopper
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(admin)
    assert client.get(URL, {"subject": subject.key}).json()["personalized"]


def test_similar_items(catalog_items, active_models):
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [], similar={c["b1"].pk: [c["b3"].pk]})
    response = Client().get(similar_url("b1"), {"limit": 2})
    assert response.status_code == 200
    data = response.json()
    assert data["placement"] == "similar" and data["heading"] == "Similar items"
    assert next(r["item"] for r in data["results"]) == "b3"
    assert data["results"][0]["explanation"] == "Similar to Book 1"
    assert len(data["results"]) == 2


def test_similar_items_errors(catalog_items, active_models):
    assert Client().get(similar_url("nope")).status_code == 404
    bad = Client().get(similar_url("b1"), {"strategy": "nonexistent"})
    assert bad.status_code == 400 and "strategy" in bad.json()
    assert "limit" in Client().get(similar_url("b1"), {"limit": "-1"}).json()
    assert "extra" in Client().get(similar_url("b1"), {"extra": "1"}).json()


def test_similar_items_with_a_placement(catalog_items, active_models):
    Placement.objects.create(name="pdp", heading="Customers also bought",
                             filters={"include_categories": ["Tools"]})
    data = Client().get(similar_url("b1"), {"placement": "pdp", "limit": 3}).json()
    assert data["heading"] == "Customers also bought"
    assert all(r["item"].startswith("t") for r in data["results"])


def test_schema_and_docs(db):
    schema = Client().get("/api/personalize/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/personalize/recommendations/" in paths
    assert "/api/personalize/items/{external_id}/similar/" in paths
    params = {p["name"] for p in paths["/api/personalize/recommendations/"]["get"]["parameters"]}
    assert {"placement", "limit", "item", "subject"} <= params
    docs = Client().get("/api/personalize/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


@pytest.mark.parametrize("similar", [False, True])
def test_a_computed_block_is_cached_once_the_response_is_closed(shopper, monkeypatch, similar):
    from rest_framework.test import APIRequestFactory, force_authenticate

    from personalize.api import recommendations as api
    from personalize.serving import cache as block_cache
    from personalize.serving.stats import serving_stats

    client, subject = shopper
    written: list[str] = []
    original = block_cache.write
    monkeypatch.setattr(block_cache, "write",
                        lambda key, *rest: (written.append(key), original(key, *rest)))
    request = APIRequestFactory().get(similar_url("b1") if similar else URL, {"limit": 2})
    force_authenticate(request, user=subject.user)
    if similar:
        response = api.SimilarItemsView.as_view()(request, external_id="b1")
    else:
        response = api.RecommendationsView.as_view()(request)
    response.render()
    assert response.status_code == 200
    assert written == []  # nothing written while the response is on its way
    close(response)
    assert len(written) == 1
    close(response)  # a second close writes nothing again
    assert len(written) == 1
    placement = "similar" if similar else "home"
    before = serving_stats().get(placement, {}).get("cache_hits", 0)
    path = similar_url("b1") if similar else URL
    assert client.get(path, {"limit": 2}).json() == response.data
    assert serving_stats()[placement]["cache_hits"] == before + 1


def test_a_cache_hit_writes_nothing(shopper, monkeypatch):
    from personalize.serving import cache as block_cache

    client, _ = shopper
    client.get(URL, {"limit": 2})
    written: list[str] = []
    monkeypatch.setattr(block_cache, "write", lambda key, *rest: written.append(key))
    client.get(URL, {"limit": 2})
    assert written == []


def test_a_pickled_block_response_writes_nothing_when_closed(shopper, monkeypatch):
    import pickle

    from rest_framework.renderers import JSONRenderer

    from personalize.api.recommendations import BlockResponse
    from personalize.serving import cache as block_cache

    written: list[str] = []
    monkeypatch.setattr(block_cache, "write", lambda key, *rest: written.append(key))
    response = BlockResponse({"results": []}, [("key", ("entry",), 60)])
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = "application/json"
    response.renderer_context = {}
    response.render()
    copy = pickle.loads(pickle.dumps(response))
    close(copy)
    assert written == []
    close(response)
    assert written == ["key"]


def test_results_carry_the_catalog_attributes(catalog_items, active_models):
    from personalize.models import Item

    attributes = {"price": 12.5, "brand": "Acme", "image": "/media/b1.jpg"}
    Item.objects.filter(external_id="b1").update(attributes=attributes)
    data = Client().get(URL, {"limit": 2}).json()
    assert data["results"][0]["item"] == "b1"
    assert data["results"][0]["attributes"] == attributes
    assert data["results"][1]["attributes"] == {}
    c = catalog_items
    active_models["item_knn"] = make_model("item_knn", [], similar={c["b2"].pk: [c["b1"].pk]})
    similar = Client().get(similar_url("b2"), {"limit": 1}).json()
    assert similar["results"][0]["attributes"] == attributes


def test_the_schema_documents_the_attributes(db):
    schema = Client().get("/api/personalize/schema/", HTTP_ACCEPT="application/json").json()
    item = schema["components"]["schemas"]["Recommendation"]["properties"]
    assert item["attributes"]["type"] == "object"
    assert "CATALOG" in item["attributes"]["description"]


def test_an_unknown_placement_is_a_404_naming_the_known_ones(catalog_items, active_models,
                                                              caplog):
    from personalize.serving import placements
    from personalize.serving.stats import serving_stats

    Placement.objects.create(name="cart")
    with caplog.at_level(logging.INFO, logger="personalize"):
        response = Client().get(URL, {"placement": "made-up-1"})
    assert response.status_code == 404
    assert response.json() == {
        "detail": "Unknown placement 'made-up-1'; known placements: cart, home."}
    # nothing kept, logged or counted for a name a caller made up
    assert "made-up-1" not in placements._configs
    assert not [r for r in caplog.records if "made-up-1" in r.getMessage()]
    assert "made-up-1" not in serving_stats()
    assert not Placement.objects.filter(name="made-up-1").exists()


def test_an_unknown_placement_writes_no_cache_key(catalog_items, active_models, monkeypatch):
    from personalize.serving import cache as block_cache

    written: list[str] = []
    monkeypatch.setattr(block_cache, "write", lambda key, *rest: written.append(key))
    for n in range(5):
        assert Client().get(URL, {"placement": f"made-up-{n}"}).status_code == 404
    assert written == []


def test_no_placement_at_all_says_how_one_is_made(catalog_items, active_models, home):
    home.delete()
    response = Client().get(URL)
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "Unknown placement 'home'; known placements: none yet (a template tag creates one on "
        "first render; or add one in the admin).")


def test_similar_items_with_an_unknown_placement_is_a_404(catalog_items, active_models):
    response = Client().get(similar_url("b1"), {"placement": "made-up"})
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "Unknown placement 'made-up'; known placements: home.")


@pytest.mark.parametrize("name", ["item", "limit", "placement", "subject"])
def test_a_parameter_without_a_value_is_a_400(catalog_items, active_models, name):
    response = Client().get(f"{URL}?{name}=")
    assert response.status_code == 400
    assert name in response.json()


def test_the_schema_documents_every_answer(db):
    paths = Client().get("/api/personalize/schema/?format=json").json()["paths"]
    statuses = {(path.removeprefix("/api/personalize/"), method): set(operation["responses"])
                for path, methods in paths.items() for method, operation in methods.items()}
    assert statuses == {
        ("consent/", "get"): {"200"},
        ("consent/", "post"): {"200", "400", "403", "415"},
        ("me/data/", "get"): {"200"},
        ("me/data/", "delete"): {"200", "403"},
        ("events/", "post"): {"200", "400", "403", "413", "415", "429", "503"},
        ("recommendations/", "get"): {"200", "400", "403", "404", "503"},
        ("items/{external_id}/similar/", "get"): {"200", "400", "404", "503"},
        ("experiments/{id}/results/", "get"): {"200", "401", "403", "404", "409", "503"},
    }
    erase = paths["/api/personalize/me/data/"]["delete"]["responses"]["200"]
    assert erase["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErasureResult"}
    events = paths["/api/personalize/events/"]["post"]["requestBody"]
    assert events["required"] is True
    strategy = next(p for p in paths["/api/personalize/items/{external_id}/similar/"]["get"][
        "parameters"] if p["name"] == "strategy")
    assert {"popular", "item_knn", "ease"} <= set(strategy["schema"]["enum"])


# --- exposures: the impression id and positions ---------------------------------


def test_the_answer_carries_the_impression_id_of_its_logged_exposure(shopper, catalog_items):
    from personalize.models import Exposure
    from tests.experiments.factories import grant_analytics

    client, subject = shopper
    assert client.get(URL, {"limit": 2}).json()["impression"] is None  # no analytics consent
    assert not Exposure.objects.exists()
    grant_analytics(subject)
    data = client.get(URL, {"limit": 2}).json()
    exposure = Exposure.objects.get()
    assert data["impression"] == str(exposure.id)
    assert [(r["item"], r["position"]) for r in data["results"]] == [("t3", 1), ("b2", 2)]
    assert exposure.items == [catalog_items["t3"].pk, catalog_items["b2"].pk]
    assert (exposure.subject, exposure.source, exposure.strategy) == (subject, "api", "item_knn")
    similar = client.get(similar_url("b1"), {"limit": 2}).json()
    assert similar["impression"] == str(Exposure.objects.get(placement="similar").id)
    assert [r["position"] for r in similar["results"]] == [1, 2]


def test_a_staff_preview_of_another_subject_is_not_an_exposure(shopper):
    from personalize.models import Exposure
    from tests.experiments.factories import grant_analytics

    _, subject = shopper
    grant_analytics(subject)
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_any_recommendations"))
    client = Client()
    client.force_login(staff)
    data = client.get(URL, {"limit": 2, "subject": subject.key}).json()
    assert data["personalized"] is True and data["impression"] is None
    assert not Exposure.objects.exists()
