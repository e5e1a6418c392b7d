"""Many-to-many relations the catalog reads are mirrored when they change, not only on save."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from personalize.models import Item
from tests.testapp.models import Book, Category, Gadget, GadgetCategory, Product

pytestmark = pytest.mark.django_db

PRODUCT = {"title": "name", "categories": "category.name"}
BOOK = {"prefix": "book-", "title": "title", "categories": "genres.name"}
GADGET = {"prefix": "gadget-", "title": "name", "categories": ["categories.name"]}


@pytest.fixture(autouse=True)
def catalog():
    with override_settings(PERSONALIZE={"CATALOG": {
        "testapp.Product": PRODUCT, "testapp.Book": BOOK, "testapp.Gadget": GADGET,
    }}):
        yield


@pytest.fixture
def genres():
    return {name: Category.objects.create(name=name) for name in ("Crime", "Poetry", "Tools")}


def categories_of(obj) -> list[str]:
    return Item.objects.get(object_id=str(obj.pk), content_type__model=type(obj)._meta.model_name
                            ).categories


def test_categories_added_after_the_save_reach_the_item(genres):
    book = Book.objects.create(title="Dune")
    assert categories_of(book) == []  # saved before its categories, as oscar does
    book.genres.add(genres["Crime"], genres["Poetry"])
    assert categories_of(book) == ["Crime", "Poetry"]
    item = Item.objects.get(external_id=f"book-{book.pk}")
    assert item.primary_category == "Crime"


def test_removing_and_clearing_categories_reach_the_item(genres):
    book = Book.objects.create(title="Dune")
    book.genres.set([genres["Crime"], genres["Poetry"]])
    book.genres.remove(genres["Crime"])
    assert categories_of(book) == ["Poetry"]
    book.genres.clear()
    assert categories_of(book) == []


def test_changes_from_the_other_side_resync_every_host_touched(genres):
    books = [Book.objects.create(title=f"Book {n}") for n in range(3)]
    genres["Crime"].books.add(*books[:2])
    assert [categories_of(b) for b in books] == [["Crime"], ["Crime"], []]
    genres["Crime"].books.remove(books[0])
    assert [categories_of(b) for b in books] == [[], ["Crime"], []]
    genres["Crime"].books.clear()
    assert [categories_of(b) for b in books] == [[], [], []]


def test_an_explicit_intermediate_model_is_mirrored_on_its_rows(genres):
    gadget = Gadget.objects.create(name="Lamp")
    row = GadgetCategory.objects.create(gadget=gadget, category=genres["Tools"])
    assert categories_of(gadget) == ["Tools"]
    row.delete()
    assert categories_of(gadget) == []
    gadget.categories.add(genres["Poetry"])  # the manager works on it too (m2m_changed)
    assert categories_of(gadget) == ["Poetry"]


def test_relations_the_mapping_does_not_read_are_left_alone(genres):
    with override_settings(PERSONALIZE={"CATALOG": {"testapp.Product": PRODUCT}}):
        book = Book.objects.create(title="Dune")  # not a catalog model any more
        with CaptureQueriesContext(connection) as queries:
            book.genres.add(genres["Crime"])
    assert not [q for q in queries.captured_queries if "personalize_item" in q["sql"]]
    assert not Item.objects.filter(external_id=f"book-{book.pk}").exists()


def test_deleting_a_host_with_explicit_rows_leaves_no_item(genres):
    gadget = Gadget.objects.create(name="Lamp")
    GadgetCategory.objects.create(gadget=gadget, category=genres["Tools"])
    gadget.delete()
    assert not Item.objects.filter(external_id__startswith="gadget-").exists()


def test_products_are_unaffected(genres):
    product = Product.objects.create(name="Saw", category=genres["Tools"])
    assert categories_of(product) == ["Tools"]
