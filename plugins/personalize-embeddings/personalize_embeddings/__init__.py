"""Sentence-transformers content strategies for django-personalize."""
