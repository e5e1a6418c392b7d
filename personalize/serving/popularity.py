"""Popularity scores for the fallback chain: from the trained model, or the database.

The active model of ``POPULARITY_STRATEGY`` (``"popular"``) is used when one
is trained: its score of every catalog item for an empty history
(``Strategy.score_items``, or its ranking where it cannot score given items) is
aligned to the catalog index once per model version. Before anything is
trained, a weighted count of the positive events of the last
``POPULARITY_WINDOW_DAYS`` days, grouped by item and event type in the
database, stands in. That aggregate is shared through the cache
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

from personalize.backends.cache import personalize_cache
from personalize.conf import personalize_settings
from personalize.models import Event
from personalize.serving import loader
from personalize.serving.catalog import CatalogIndex
from personalize.strategies.history import History

logger = logging.getLogger(__name__)

DB_CACHE_KEY = "personalize:rec:popular:db"

_lock = threading.Lock()
#: source tag -> (expires at, the index the scores are aligned to, scores)
_memo: dict[tuple[Any, ...], tuple[float, CatalogIndex, np.ndarray]] = {}


def _model() -> Any:
    name = personalize_settings.POPULARITY_STRATEGY
    if not name:
        return None
    try:
        return loader.get_active_model(name)  # None when not configured or not trained
    except Exception:
        logger.warning("Cannot load the popularity model %r", name, exc_info=True)
        return None


def _from_model(model: Any, index: CatalogIndex) -> np.ndarray:
    """The live popularity model's score of every catalog item (0 where it has none)."""
    scores = model.strategy.score_items(model.artifact, History(), index.pks.tolist())
    if scores is not None:
        return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, neginf=0.0,
                             posinf=0.0)
    # a strategy that cannot score given items: its ranking for an empty history
    ranked = model.strategy.recommend(model.artifact, History(), max(len(index), 1))
    ids = np.asarray([pk for pk, _ in ranked])
    values = np.asarray([score for _, score in ranked], dtype=np.float64)
    found_scores = np.zeros(len(index), dtype=np.float64)
    rows, found = index.positions(ids)
    found_scores[rows] = np.nan_to_num(values[found], nan=0.0, neginf=0.0)
    return found_scores


def _db_counts() -> dict[int, float]:
    """Weighted positive event counts per item pk over the window (one grouped query)."""
    try:
        cached = personalize_cache().get(DB_CACHE_KEY)
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
        personalize_cache().set(DB_CACHE_KEY, counts, timeout=ttl)
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
