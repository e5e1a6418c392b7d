from decimal import Decimal

import pytest
from django.test import override_settings

from personalize.catalog.adapter import CatalogAdapter, get_adapter_for, resolve_path
from tests.testapp.models import Category, Product

pytestmark = pytest.mark.django_db

MAPPING = {
    "title": "name",
    "text": ["name", "description"],
    "categories": "category.name",
    "available": "in_stock",
    "attributes": ["price", "category.name"],
}


def test_item_fields_follow_the_mapping():
    tools = Category.objects.create(name="Tools")
    product = Product(
        pk=7, name="Drill", description="Cordless 18V", category=tools, price=Decimal("9.50"),
        in_stock=False,
    )
    fields = CatalogAdapter("testapp.Product", MAPPING).item_fields(product)
    assert fields == {
        "title": "Drill",
        "text": "Drill\nCordless 18V",
        "categories": ["Tools"],
        "attributes": {"price": 9.5, "category_name": "Tools"},
        "available": False,
    }


def test_missing_relation_gives_empty_categories_not_an_error():
    product = Product(pk=1, name="Loose", description="")
    fields = CatalogAdapter("testapp.Product", MAPPING).item_fields(product)
    assert fields["categories"] == []
    assert fields["text"] == "Loose"


def test_external_id_defaults_to_pk_with_optional_prefix():
    product = Product(pk=42, name="x")
    assert CatalogAdapter("testapp.Product", {}).external_id(product) == "42"
    assert CatalogAdapter("testapp.Product", {"prefix": "p:"}).external_id(product) == "p:42"


def test_title_defaults_to_str_of_the_object():
    assert CatalogAdapter("testapp.Product", {}).item_fields(Product(name="Saw"))["title"] == "Saw"


def test_resolve_path_calls_methods_and_stops_at_none():
    product = Product(name="Saw")
    assert resolve_path(product, "name.upper") == "SAW"
    assert resolve_path(product, "category.name") is None


def test_adapter_lookup_follows_settings():
    assert get_adapter_for(Product) is not None
    assert get_adapter_for(Category) is None
    with override_settings(PERSONALIZE={"CATALOG": {}}):
        assert get_adapter_for(Product) is None
