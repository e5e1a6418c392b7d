"""Rebuild every Item from the host models named in PERSONALIZE["CATALOG"]."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from personalize.catalog.adapter import CatalogMappingError
from personalize.catalog.sync import count_catalog, sync_catalog
from personalize.conf import personalize_settings
from personalize.management.progress import ProgressFile


class Command(BaseCommand):
    help = "Create, update and delete Items so they mirror the configured catalog models."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not personalize_settings.CATALOG:
            raise CommandError(
                "PERSONALIZE['CATALOG'] is empty: name the host models to mirror, "
                'e.g. {"shop.Product": {"title": "name"}}.'
            )
        total = count_catalog()
        with tqdm(total=total, unit="obj", desc="Syncing catalog",
                  disable=options["no_progress"] or options["verbosity"] == 0,
                  file=ProgressFile(self.stderr)) as bar:
            try:
                report = sync_catalog(progress=bar.update)
            except CatalogMappingError as exc:
                raise CommandError(
                    f"{exc}. Fix the mapping (`manage.py check` validates it) and run again; "
                    "the chunks before this object were synced."
                ) from exc
        self.stdout.write(self.style.SUCCESS(f"Catalog synced: {report}."))
