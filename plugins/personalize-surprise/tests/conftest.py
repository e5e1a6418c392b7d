"""Fixtures for the surprise plugin tests; helpers live in surprise_factories (unique module name:
the two plugin test folders share one sys.path)."""

from surprise_factories import *  # noqa: F403
