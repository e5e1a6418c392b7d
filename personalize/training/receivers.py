"""Signal receivers of the training package, connected from ``AppConfig.ready``."""

from __future__ import annotations

import logging
from typing import Any

from personalize import signals
from personalize.catalog import sync
from personalize.conf import personalize_settings
from personalize.models import Item
from personalize.training import embedding, triggers
from personalize.training.tasks import embed_pending

logger = logging.getLogger(__name__)


def on_items_changed(sender: Any = None, item_ids: Any = None, **kwargs: Any) -> None:
    """Receiver of ``items_changed``: queue the items for embedding (debounced).

    Never raises: a page save must not fail over embeddings.
    """
    try:
        if embedding.queue_pending(item_ids or ()):
            embed_pending.apply_async(countdown=float(personalize_settings.EMBED_DEBOUNCE_SECONDS))
    except Exception:
        logger.warning("Cannot queue items for embedding", exc_info=True)


def on_item_changed(item: Item) -> None:
    """Hook for ``personalize.catalog.sync.item_changed_hooks``."""
    on_items_changed(item_ids=[item.pk])


def connect_training_signals() -> None:
    """Count events, embed changed items (idempotent)."""
    signals.event_recorded.connect(triggers.on_event_recorded,
                                   dispatch_uid="personalize.training.threshold")
    signals.items_changed.connect(on_items_changed, dispatch_uid="personalize.training.embed")
    if on_item_changed not in sync.item_changed_hooks:
        sync.item_changed_hooks.append(on_item_changed)
