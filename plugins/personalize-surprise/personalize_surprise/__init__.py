"""Surprise rating models as django-personalize strategies."""
