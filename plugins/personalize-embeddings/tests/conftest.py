"""Fixtures for the embeddings plugin tests.

Helpers live in embeddings_factories: a unique module name, because the two
plugin test folders share one sys.path."""

from embeddings_factories import *  # noqa: F403
