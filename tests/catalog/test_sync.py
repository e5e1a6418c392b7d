import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from personalize.catalog import sync
from personalize.catalog.sync import sync_catalog
from personalize.models import Event, Item, Subject
from personalize.serving.service import recommend
from personalize.signals import items_changed
from tests.serving.fixtures import active_models  # noqa: F401 - a fixture
from tests.testapp.models import Category, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def tools():
    return Category.objects.create(name="Tools")


def test_saving_a_host_object_creates_and_updates_its_item(tools):
    product = Product.objects.create(name="Drill", description="18V", category=tools)
    item = Item.objects.get(object_id=str(product.pk))
    assert (item.external_id, item.title, item.categories) == (str(product.pk), "Drill", ["Tools"])
    assert item.primary_category == "Tools"
    old_hash = item.content_hash

    product.name = "Hammer drill"
    product.save()
    item.refresh_from_db()
    assert item.title == "Hammer drill"
    assert item.content_hash != old_hash


def test_deleting_a_host_object_deletes_its_item(tools):
    product = Product.objects.create(name="Drill", category=tools)
    product.delete()
    assert not Item.objects.exists()


def test_full_sync_creates_updates_and_deletes_in_bulk(tools):
    with override_settings(PERSONALIZE={"CATALOG": {}}):  # signals no-op: start from nothing
        products = [Product.objects.create(name=f"P{i}", category=tools) for i in range(5)]
    report = sync_catalog()
    assert (report.created, report.updated, report.unchanged, report.deleted) == (5, 0, 0, 0)

    with override_settings(PERSONALIZE={"CATALOG": {}}):
        Product.objects.filter(pk=products[0].pk).update(name="Renamed")
        Product.objects.filter(pk=products[1].pk).delete()
    report = sync_catalog()
    assert (report.created, report.updated, report.unchanged, report.deleted) == (0, 1, 3, 1)
    assert Item.objects.get(object_id=str(products[0].pk)).title == "Renamed"


def test_full_sync_is_idempotent(tools):
    Product.objects.create(name="Saw", category=tools)
    first = sync_catalog()
    second = sync_catalog()
    assert first.unchanged == 1 and second.unchanged == 1
    assert second.created == second.updated == second.deleted == 0


def test_deleted_count_ignores_cascaded_events(tools):
    with override_settings(PERSONALIZE={"CATALOG": {}}):
        product = Product.objects.create(name="Saw", category=tools)
    sync_catalog()
    item = Item.objects.get()
    subject = Subject.objects.create()
    Event.objects.create(subject=subject, item=item, event_type="view")
    with override_settings(PERSONALIZE={"CATALOG": {}}):
        product.delete()
    assert sync_catalog().deleted == 1


def test_changed_content_calls_item_changed_hooks(tools, monkeypatch):
    seen = []
    monkeypatch.setattr(sync, "item_changed_hooks", [lambda item: seen.append(item.title)])
    with override_settings(PERSONALIZE={"CATALOG": {}}):
        product = Product.objects.create(name="Saw", category=tools)
    sync_catalog()
    assert seen == []  # a new item has no previous content
    with override_settings(PERSONALIZE={"CATALOG": {}}):
        Product.objects.filter(pk=product.pk).update(description="sharper")
    sync_catalog()
    assert seen == ["Saw"]


def test_command_reports_counts(tools, capsys):
    Product.objects.create(name="Saw", category=tools)
    call_command("personalize_sync_catalog", "--no-progress")
    assert "0 created, 0 updated, 1 unchanged, 0 deleted" in capsys.readouterr().out


def test_command_without_catalog_says_how_to_configure():
    with override_settings(PERSONALIZE={"CATALOG": {}}):
        with pytest.raises(CommandError, match="CATALOG"):
            call_command("personalize_sync_catalog")


def test_mapped_attributes_are_stored_on_the_item(tools):
    mapping = {"title": "name", "categories": "category.name",
               "attributes": {"price": "price", "department": "category.name"}}
    with override_settings(PERSONALIZE={"CATALOG": {"testapp.Product": mapping}}):
        product = Product.objects.create(name="Drill", category=tools, price="19.99")
        item = Item.objects.get(object_id=str(product.pk))
        assert item.attributes == {"price": 19.99, "department": "Tools"}
        product.price = "17.50"
        product.save()
        item.refresh_from_db()
        assert item.attributes == {"price": 17.5, "department": "Tools"}


def test_bulk_sync_announces_the_items_it_created_updated_and_deleted(
    tools, django_capture_on_commit_callbacks
):
    announced = []

    def receiver(sender, item_ids, **kwargs):
        announced.append(sorted(item_ids))

    items_changed.connect(receiver, dispatch_uid="test-bulk-sync")
    try:
        with override_settings(PERSONALIZE={"CATALOG": {}}):
            products = [Product.objects.create(name=f"P{i}", category=tools) for i in range(3)]
        with django_capture_on_commit_callbacks(execute=True):
            sync_catalog()
        created = sorted(Item.objects.values_list("pk", flat=True))
        assert announced == [created]  # one signal for the chunk, after the commit

        announced.clear()
        with override_settings(PERSONALIZE={"CATALOG": {}}):
            Product.objects.filter(pk=products[0].pk).update(in_stock=False)
            Product.objects.filter(pk=products[1].pk).delete()
        updated = Item.objects.get(object_id=str(products[0].pk)).pk
        deleted = Item.objects.get(object_id=str(products[1].pk)).pk
        with django_capture_on_commit_callbacks(execute=True):
            sync_catalog()
        assert announced == [[updated], [deleted]]

        announced.clear()
        with django_capture_on_commit_callbacks(execute=True):
            sync_catalog()  # nothing changed: nothing announced
        assert announced == []
    finally:
        items_changed.disconnect(dispatch_uid="test-bulk-sync")


@pytest.mark.usefixtures("active_models")  # no trained model: the popular fill serves
def test_a_cached_block_is_not_served_after_a_sync_that_changes_an_item(
    tools, django_capture_on_commit_callbacks
):
    with override_settings(PERSONALIZE={"CATALOG": {}}):
        products = [Product.objects.create(name=f"P{i}", category=tools) for i in range(4)]
    sync_catalog()
    before = [rec.item.object_id for rec in recommend(None, "home", limit=10)]
    assert str(products[0].pk) in before

    with override_settings(PERSONALIZE={"CATALOG": {}}):  # changed behind the signals' back
        Product.objects.filter(pk=products[0].pk).update(in_stock=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert sync_catalog().updated == 1
    after = [rec.item.object_id for rec in recommend(None, "home", limit=10)]
    assert str(products[0].pk) not in after
    assert sorted(after) == sorted(str(p.pk) for p in products[1:])


def test_the_scheduled_sync_task_repairs_what_no_signal_reported(tools):
    from personalize.catalog.tasks import sync_catalog as sync_task

    with override_settings(PERSONALIZE={"CATALOG": {}}):
        product = Product.objects.create(name="Saw", category=tools)
    assert sync_task.delay().get() == {"created": 1, "updated": 0, "unchanged": 0, "deleted": 0}
    Product.objects.filter(pk=product.pk).update(name="Fret saw")  # update() sends no signal
    assert sync_task.delay().get()["updated"] == 1
    assert Item.objects.get(object_id=str(product.pk)).title == "Fret saw"
