"""The save hooks never break the host's save, and follow many-to-many changes."""

import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import override_settings

from personalize.catalog.adapter import resolve_path
from personalize.models import Item
from tests.testapp.models import Category, Product, Tag

pytestmark = pytest.mark.django_db

BROKEN = {"CATALOG": {"testapp.Product": {"title": "name", "categories": "name.label"}}}


def test_a_mapping_that_cannot_be_read_is_logged_and_the_save_goes_through(caplog):
    with override_settings(PERSONALIZE=BROKEN), caplog.at_level(logging.ERROR):
        with transaction.atomic():
            product = Product.objects.create(name="Drill")
            product.description = "18V"
            product.save()
            assert Product.objects.get(pk=product.pk).description == "18V"
    assert Product.objects.filter(pk=product.pk).exists()
    assert not Item.objects.exists()  # left as it was: no half-read item
    errors = [r for r in caplog.records if r.name == "personalize.catalog.signals"]
    assert len(errors) == 2
    message = errors[0].getMessage()
    assert message.startswith(
        "PERSONALIZE['CATALOG']['testapp.Product']['categories']: cannot read 'name.label' "
        f"from testapp.Product {product.pk}: AttributeError: 'str' object has no attribute 'label'"
    )
    assert "`manage.py check`" in message


def test_a_failed_item_write_leaves_the_hosts_transaction_usable(monkeypatch, caplog):
    def broken_save(self, *args, **kwargs):
        with connection.cursor() as cursor:  # a database error inside the hook's writes
            cursor.execute("SELECT * FROM personalize_no_such_table")

    monkeypatch.setattr(Item, "save", broken_save)
    with caplog.at_level(logging.ERROR), transaction.atomic():
        product = Product.objects.create(name="Drill")
        # On PostgreSQL the transaction would be aborted without the hook's savepoint.
        assert Product.objects.filter(pk=product.pk).count() == 1
    assert Product.objects.filter(pk=product.pk).exists()
    assert "PERSONALIZE['CATALOG']['testapp.Product']" in caplog.text


def test_a_not_a_number_attribute_is_stored_as_null(monkeypatch):
    monkeypatch.setattr(Product, "score", property(lambda self: float("nan")), raising=False)
    catalog = {"testapp.Product": {"title": "name", "attributes": ["price", "score"]}}
    with override_settings(PERSONALIZE={"CATALOG": catalog}):
        product = Product.objects.create(name="Drill")
    assert Item.objects.get(object_id=str(product.pk)).attributes == {"price": 0.0, "score": None}


def test_the_sync_command_names_the_setting_of_a_broken_mapping():
    with override_settings(PERSONALIZE={"CATALOG": {}}):
        Product.objects.create(name="Drill")
    with override_settings(PERSONALIZE=BROKEN):
        with pytest.raises(CommandError, match=r"PERSONALIZE\['CATALOG'\]\['testapp.Product'\]"
                                               r"\['categories'\]: cannot read 'name.label'"):
            call_command("personalize_sync_catalog", "--no-progress")


TAGGED = {"CATALOG": {"testapp.Product": {"title": "name", "categories": "tags.name"}}}


@pytest.fixture
def tagged():
    """The catalog maps categories through the many-to-many ``tags``."""
    with override_settings(PERSONALIZE=TAGGED):  # the receivers connect on the change
        yield


def categories(product):
    return Item.objects.get(object_id=str(product.pk)).categories


def test_many_to_many_changes_update_the_item(tagged, django_capture_on_commit_callbacks):
    red, blue = Tag.objects.create(name="red"), Tag.objects.create(name="blue")
    drill = Product.objects.create(name="Drill")
    saw = Product.objects.create(name="Saw")
    assert categories(drill) == []

    drill.tags.add(red, blue)  # what the admin does after saving the product
    assert categories(drill) == ["red", "blue"]
    drill.tags.remove(red)
    assert categories(drill) == ["blue"]

    blue.products.add(saw)  # from the other side
    assert categories(saw) == ["blue"]
    with django_capture_on_commit_callbacks(execute=True):
        blue.products.clear()
    assert categories(drill) == categories(saw) == []

    drill.tags.add(red)
    drill.tags.clear()
    assert categories(drill) == []


def test_a_path_through_many_to_many_follows_the_rest_from_each_object():
    tools = Category.objects.create(name="Tools")
    drill = Product.objects.create(name="Drill")
    drill.tags.add(Tag.objects.create(name="red", category=tools), Tag.objects.create(name="blue"))
    assert sorted(resolve_path(drill, "tags.name.upper")) == ["BLUE", "RED"]
    assert sorted(resolve_path(drill, "tags.category.pk"), key=str) == [tools.pk, None]
