"""The catalog checks follow every mapping path to its end (personalize.E003, E004, W001)."""

import pytest
from django.core.checks import Error
from django.test import override_settings

from personalize import checks
from personalize.catalog.checks import path_problem
from tests.testapp.models import Category, Product

OBJ = "PERSONALIZE['CATALOG']['testapp.Product']"


def run(catalog):
    with override_settings(PERSONALIZE={"CATALOG": catalog, "LOAD_ENTRY_POINTS": False}):
        return checks.check_catalog()


def test_a_plain_text_field_cannot_be_followed_like_a_relation():
    # A site whose "category" is a CharField: every save failed with AttributeError before.
    assert run({"testapp.Product": {"categories": "description.name"}}) == [Error(
        "testapp.Product.description is a TextField, not a relation, and its str values have "
        "no attribute 'name' (catalog mapping 'categories': 'description.name').",
        hint="Map 'description' itself, or make 'description' a ForeignKey or ManyToManyField "
             "to a model that has 'name'.",
        obj=OBJ, id="personalize.E004",
    )]


def test_every_step_through_a_foreign_key_is_checked():
    assert run({"testapp.Product": {"text": ["name", "category.titel"]}}) == [Error(
        "testapp.Category has no field or attribute 'titel' "
        "(catalog mapping 'text': 'category.titel').",
        hint="Name a field, relation, property or method of testapp.Category.",
        obj=OBJ, id="personalize.E004",
    )]


def test_many_to_many_and_reverse_paths_are_followed():
    assert run({"testapp.Product": {"categories": ["tags.name", "tags.category.name"],
                                    "attributes": ["tags"]}}) == []
    assert run({"testapp.Category": {"text": ["product_set.tags.name", "tag_set.name"]}}) == []
    result = run({"testapp.Product": {"categories": "tags.nme"}})
    assert [(m.id, m.msg) for m in result] == [(
        "personalize.E004",
        "testapp.Tag has no field or attribute 'nme' (catalog mapping 'categories': 'tags.nme').",
    )]
    result = run({"testapp.Category": {"text": "product_set.colour"}})
    assert [m.msg for m in result] == [
        "testapp.Product has no field or attribute 'colour' "
        "(catalog mapping 'text': 'product_set.colour')."
    ]


@pytest.mark.parametrize("path", [
    "name.upper", "price.quantize", "pk", "id", "category_id", "category.pk", "__str__",
    "tags.name.title",
])
def test_paths_that_resolve_pass(path):
    assert path_problem(Product, path) is None


@pytest.mark.parametrize(("path", "start"), [
    ("in_stock.label", "testapp.Product.in_stock is a BooleanField, not a relation, and its bool"),
    ("price.amount", "testapp.Product.price is a DecimalField, not a relation, and its Decimal"),
    ("category.name.nope", "testapp.Category.name is a CharField, not a relation, and its str"),
    ("category..name", "'category..name' is not a dotted path"),
])
def test_paths_that_cannot_resolve_are_named(path, start):
    message, hint = path_problem(Product, path)
    assert message.startswith(start)
    assert hint


def test_mapping_values_must_be_paths():
    result = run({"testapp.Product": {"title": ["name"], "text": 3, "prefix": 1}})
    assert [m.msg for m in result] == [
        "The catalog mapping 'prefix' of testapp.Product is 1, not a string.",
        "The catalog mapping 'title' of testapp.Product is ['name'], not a path.",
        "The catalog mapping 'text' of testapp.Product is 3, not a path or a list of paths.",
    ]
    assert {m.id for m in result} == {"personalize.E004"}


def test_a_mapping_that_is_not_a_dict():
    assert [(m.id, m.msg) for m in run({"testapp.Category": "name"})] == [(
        "personalize.E004", "The catalog mapping of testapp.Category is 'name', not a dict.",
    )]


def test_the_test_projects_catalog_passes():
    assert checks.check_catalog() == []
    assert Category._meta.label == "testapp.Category"
