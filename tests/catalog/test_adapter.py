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


def test_attributes_as_a_dict_name_each_attribute():
    tools = Category.objects.create(name="Tools")
    product = Product(pk=3, name="Saw", category=tools, price=Decimal("12.25"))
    mapping = {"attributes": {"price": "price", "department": "category.name",
                              "label": "name.upper"}}
    fields = CatalogAdapter("testapp.Product", mapping).item_fields(product)
    assert fields["attributes"] == {"price": 12.25, "department": "Tools", "label": "SAW"}
    loose = CatalogAdapter("testapp.Product", mapping).item_fields(Product(pk=4, name="Nut"))
    assert loose["attributes"] == {"price": 0.0, "department": None, "label": "NUT"}


def test_an_empty_file_field_gives_none_not_an_error():
    from types import SimpleNamespace

    from django.db import models
    from django.db.models.fields.files import FieldFile

    field = models.ImageField(upload_to="x")
    field.name = "image"
    empty = SimpleNamespace(image=FieldFile(None, field, None))
    assert resolve_path(empty, "image.url") is None
    full = SimpleNamespace(image=FieldFile(None, field, "products/saw.jpg"))
    assert resolve_path(full, "image.url").endswith("products/saw.jpg")


def test_a_dict_mapping_reaches_the_adapter_from_settings():
    mapping = {"title": "name", "attributes": {"cost": "price"}}
    with override_settings(PERSONALIZE={"CATALOG": {"testapp.Product": mapping}}):
        adapter = get_adapter_for(Product)
        assert adapter is not None
        fields = adapter.item_fields(Product(pk=1, name="Saw", price=Decimal("3.00")))
    assert fields["attributes"] == {"cost": 3.0}
