"""Fixtures for the embeddings plugin tests; helpers live in embeddings_factories (unique module name:
the two plugin test folders share one sys.path)."""

from embeddings_factories import *  # noqa: F403
