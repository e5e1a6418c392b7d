"""Admin screens: catalog and placements are editable; history is read-only.

Importing this package registers every screen (Django's admin autodiscovery
imports ``personalize.admin``).
"""

from personalize.admin import data, experiments, placements, training  # noqa: F401
