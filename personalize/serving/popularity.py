"""Popularity scores for the fallback chain: from the trained model, or the database.

The active model of ``POPULARITY_STRATEGY`` (``"popular"``) is used when one
is trained: its ``scores`` array (or, for another popularity-like strategy,
its ranking for an empty history) is aligned to the catalog index once per
model version. Before anything is trained, a weighted count of the positive
events of the last ``POPULARITY_WINDOW_DAYS`` days, grouped by item and event
type in the database, stands in. That aggregate is shared through the cache
alias and kept in-process for ``POPULARITY_CACHE_TTL`` seconds, so a busy site
runs the query once per TTL, not once per request.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import numpy as np
from django.db.models import Count
from django.utils import timezone

from personalize.conf import personalize_settings
from personalize.models import Event
from personalize.serving.catalog import CatalogIndex
from personalize.strategies.base import History

logger = logging.getLogger(__name__)

DB_CACHE_KEY = "personalize:rec:popular:db"

_lock = threading.Lock()
#: source tag -> (expires at, the index the scores are aligned to, scores)
_memo: dict[tuple[Any, ...], tuple[float, CatalogIndex, np.ndarray]] = {}


def _model() -> Any:
    from personalize.training.active import get_active_model

    name = personalize_settings.POPULARITY_STRATEGY
    if not name:
        return None
    try:
        return get_active_model(name)  # None when not configured or not trained
    except Exception:
        logger.warning("Cannot load the popularity model %r", name, exc_info=True)
        return None


def _from_model(model: Any, index: CatalogIndex) -> np.ndarray:
    scores = np.zeros(len(index), dtype=np.float64)
    artifact = model.artifact
    if "item_ids" in artifact and "scores" in artifact:
        ids, values = artifact["item_ids"], artifact["scores"].astype(np.float64)
    else:
        ranked = model.strategy.recommend(artifact, History(), max(len(index), 1))
        ids = np.asarray([pk for pk, _ in ranked])
        values = np.asarray([score for _, score in ranked], dtype=np.float64)
    rows, found = index.positions(ids)
    scores[rows] = np.nan_to_num(values[found], nan=0.0, neginf=0.0)
    return scores


def _db_counts() -> dict[int, float]:
    """Weighted positive event counts per item pk over the window (one grouped query)."""
    from personalize.serving.cache import get_cache

    try:
        cached = get_cache().get(DB_CACHE_KEY)
    except Exception:
        cached = None
    if cached is not None:
        return dict(cached)
    weights = personalize_settings.event_weights
    positive = {name: (1.0 if w is None else float(w)) for name, w in weights.items()
                if w is None or w > 0}
    events = Event.objects.filter(item__isnull=False, event_type__in=list(positive))
    days = personalize_settings.POPULARITY_WINDOW_DAYS
    if days:
        events = events.filter(timestamp__gte=timezone.now() - timedelta(days=float(days)))
    counts: dict[int, float] = {}
    for item_id, event_type, n in (
        events.values_list("item_id", "event_type").annotate(n=Count("id")).order_by()
    ):
        counts[item_id] = counts.get(item_id, 0.0) + positive[event_type] * n
    try:
        ttl = int(personalize_settings.POPULARITY_CACHE_TTL)
        get_cache().set(DB_CACHE_KEY, counts, timeout=ttl)
    except Exception:
        logger.debug("Cannot cache the popularity aggregate", exc_info=True)
    return counts


def _from_db(index: CatalogIndex) -> np.ndarray:
    counts = _db_counts()
    scores = np.zeros(len(index), dtype=np.float64)
    if counts:
        pks = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        rows, found = index.positions(pks)
        scores[rows] = values[found]
    return scores


def popularity(index: CatalogIndex) -> tuple[np.ndarray, str]:
    """Popularity of every item of ``index`` (aligned to its rows) and where it came from.

    Returns:
        ``(scores, source)`` with ``source`` ``"model"`` or ``"database"``.
        Items nobody interacted with score 0.
    """
    model = _model()
    now = time.monotonic()
    if model is not None:
        key: tuple[Any, ...] = ("model", model.name, model.version)
        ttl = float("inf")
        source = "model"
    else:
        key = ("db",)
        ttl = float(personalize_settings.POPULARITY_CACHE_TTL)
        source = "database"
    hit = _memo.get(key)
    if hit is not None and hit[0] > now and hit[1] is index:
        return hit[2], source
    try:
        scores = _from_model(model, index) if model is not None else _from_db(index)
    except Exception:
        if model is None:
            raise
        logger.warning("Popularity model unusable; counting events instead", exc_info=True)
        scores, source = _from_db(index), "database"
    with _lock:
        _memo.clear()  # one source and one index at a time
        _memo[key] = (now + ttl, index, scores)
    return scores, source


def clear() -> None:
    """Forget memoised popularity (tests use it)."""
    with _lock:
        _memo.clear()
