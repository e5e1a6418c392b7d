"""Fixtures for the demo shop's tests.

The suite runs with ``tests.testapp.settings`` (which installs ``example_shop.shop``);
these fixtures switch the URLconf to the shop's and add the shop's catalog
mapping, exactly as ``example_shop/settings.py`` configures it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from example_shop.shop.models import Category, Product

SHOP_CATALOG = {
    "shop.Product": {
        "external_id": "asin",
        "title": "name",
        "text": ["name", "description", "brand"],
        "categories": "category.name",
        "available": "in_stock",
        "attributes": {"price": "price", "brand": "brand", "image": "image_url"},
    }
}


#: The project's own templates (they restyle django-personalize's pages).
SHOP_TEMPLATE_DIRS = [Path(__file__).resolve().parents[2] / "example_shop" / "templates"]


@pytest.fixture
def shop_settings(settings):
    """The shop's URLs, templates and catalog mapping on top of the test settings."""
    settings.ROOT_URLCONF = "example_shop.urls"
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": SHOP_TEMPLATE_DIRS}]
    settings.PERSONALIZE = {**settings.PERSONALIZE, "CATALOG": SHOP_CATALOG}
    return settings


@pytest.fixture
def catalog(db):
    """Two departments and six products, one of them out of stock."""
    lab = Category.objects.create(name="Lab & Scientific Products", slug="lab-scientific-products")
    tapes = Category.objects.create(
        name="Tapes, Adhesives & Sealants", slug="tapes-adhesives-sealants"
    )
    products = [
        Product.objects.create(asin=f"B00TEST00{i}", name=name, brand=brand, category=cat,
                               description="Glassware & Labware", price=Decimal(price),
                               in_stock=i != 5)
        for i, (name, brand, cat, price) in enumerate([
            ("Borosilicate Beaker 250 ml", "Pyrex", lab, "12.49"),
            ("Erlenmeyer Flask 500 ml", "Pyrex", lab, "15.99"),
            ("Nitrile Exam Gloves, 100 Pack", "Medline", lab, "9.95"),
            ("Gorilla Duct Tape <Black>", "Gorilla", tapes, "7.99"),
            ("Kapton Polyimide Tape", "3M", tapes, "23.49"),
            ("Cyanoacrylate Super Glue", "Loctite", tapes, "5.49"),
        ])
    ]
    return products


@pytest.fixture
def shopper(db):
    """A signed-up shopper who agreed to personalization."""
    import personalize

    user = get_user_model().objects.create_user("shopper", password="demo-pass-123")
    personalize.grant_consent(user)
    return user
