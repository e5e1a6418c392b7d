"""The training snapshot of the site's own events: the database reader of a :class:`Dataset`."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import QuerySet

from personalize.backends.database import store_for
from personalize.conf import personalize_settings
from personalize.dataset import Dataset, ItemContent
from personalize.dataset.pipeline import wanted_types
from personalize.models import Event, Item


def database_snapshot(
    since: datetime | None = None,
    until: datetime | None = None,
    event_types: Iterable[str] | None = None,
    *,
    include_catalog: bool = True,
    event_weights: dict[str, float | None] | None = None,
    chunk_size: int | None = None,
    using: str | None = None,
    **pipeline: Any,
) -> Dataset:
    """A snapshot of the site's events (``Subject.pk`` x ``Item.pk``).

    The events are read a page of at most ``chunk_size`` at a time, and the
    item rows after them, in one transaction that sees one state of the data
    (:meth:`personalize.backends.database.Store.consistent_read`).

    Args:
        since: keep events at or after this moment.
        until: keep events before this moment; also the reference time of
            time decay (default: the latest kept event).
        event_types: keep only these types (default: every preference type).
        include_catalog: also give every available Item without events a
            column, so content models can recommend new items.
        event_weights: type -> weight; default the configured types.
        chunk_size: rows per fetch (default ``SNAPSHOT_CHUNK_SIZE``).
        using: the database alias (default: the router's choice for Event).
        **pipeline: the other options of :meth:`Dataset.from_raw`
            (``exclude_subjects`` takes ``Subject.pk`` values: flagged bots).

    Returns:
        The dataset; ``meta`` records the window and filter counts.
    """
    started = time.perf_counter()
    weights = dict(event_weights if event_weights is not None
                   else personalize_settings.event_weights)
    wanted = wanted_types(weights, event_types)
    events: QuerySet[Event] = Event.objects.using(using) if using else Event.objects.all()
    events = events.filter(item__isnull=False, event_type__in=wanted)
    if since is not None:
        events = events.filter(timestamp__gte=since)
    if until is not None:
        events = events.filter(timestamp__lt=until)
    store = store_for(events.db)
    with store.consistent_read():
        raw = store.read_events(events, wanted,
                                chunk_size or personalize_settings.SNAPSHOT_CHUNK_SIZE)
        content = catalog_content(events.db, only_ids=None if include_catalog else raw.items)
    dataset = Dataset.from_raw(
        raw, content, event_types=wanted, include_catalog=include_catalog,
        event_weights=weights, reference_time=until.timestamp() if until is not None else None,
        **pipeline,
    )
    dataset.meta.update(
        source="database", since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        build_seconds=round(time.perf_counter() - started, 3),
    )
    return dataset


def catalog_content(using: str, only_ids: np.ndarray | None = None) -> ItemContent:
    """Item rows as content: every item, or only ``only_ids``."""
    rows = list(Item.objects.using(using).order_by("pk").values_list(
        "pk", "title", "text", "categories", "attributes", "available"))
    if only_ids is not None:
        wanted = set(np.unique(only_ids).tolist())
        rows = [row for row in rows if row[0] in wanted]
    if not rows:
        return ItemContent(np.empty(0, dtype=np.int64), [], [], [], [], np.empty(0, dtype=bool))
    ids, titles, texts, categories, attributes, available = zip(*rows, strict=True)
    return ItemContent(
        np.asarray(ids, dtype=np.int64),
        [title or "" for title in titles],
        [text or title or "" for text, title in zip(texts, titles, strict=True)],
        [[str(c) for c in value] if isinstance(value, list) else [] for value in categories],
        [value if isinstance(value, dict) else {} for value in attributes],
        np.asarray(available, dtype=bool),
    )
