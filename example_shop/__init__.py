"""The demo shop: a Django project whose catalog and histories come from real data."""

from example_shop.celery import app as celery_app

__all__ = ["celery_app"]
