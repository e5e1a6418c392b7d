"""Computing a block without the cache: the stages of the recommend pipeline.

::

    pinned -> the placement's strategy -> its fallback strategy
           -> popular in the page's or the subject's category -> popular -> explanations

* **Candidates**: the active model of the placement's strategy ranks
  ``limit * CANDIDATE_OVERSAMPLING`` items for the subject's history, so
  filtering and re-ranking still leave a full block.
* **Filters**: :mod:`personalize.serving.filters` (already bought, availability,
  categories, pinned, blocked, the page's own item) as one mask over the catalog.
* **Re-rank**: MMR with the placement's ``diversity`` (:mod:`personalize.serving.rerank`).
* **Fallback**: the placement's fallback strategy, then "popular in" the page's
  or the subject's favourite category, then globally popular items, until the
  block is full. An empty catalog gives an empty list.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from personalize.conf import personalize_settings
from personalize.serving import loader
from personalize.serving.block import Block, Trace
from personalize.serving.cache import Row
from personalize.serving.catalog import CatalogIndex, catalog_index
from personalize.serving.explanations import (
    FEATURED,
    MIGHT_ALSO_LIKE,
    POPULAR_NOW,
    RECOMMENDED,
    Explain,
    Reason,
    constant,
    generic_explainer,
    popular_in,
    similar_reason,
    strategy_explainer,
)
from personalize.serving.filters import (
    FilterConfig,
    allowed_mask,
    blocked_pks,
    pinned_pks,
    subject_excluded_items,
)
from personalize.serving.loader import ActiveModel
from personalize.serving.placements import PlacementConfig
from personalize.serving.popularity import popularity
from personalize.strategies import CannotRecommend, History, Scored, top_k
from personalize.tracking.history import subject_events

logger = logging.getLogger(__name__)

PINNED = "pinned"


def active_model(name: str | None) -> ActiveModel | None:
    """The live model of strategy ``name``; ``None`` (logged) when it cannot be loaded."""
    if not name:
        return None
    try:
        return loader.get_active_model(name)
    except Exception:
        logger.warning("Cannot load the active model of %r", name, exc_info=True)
        return None


def _ranked(model: ActiveModel | None, call: str, *args: Any) -> Scored:
    """A strategy's ranking, or ``[]`` when it cannot (or fails: logged, never raised)."""
    if model is None:
        return []
    try:
        return list(getattr(model.strategy, call)(model.artifact, *args))
    except CannotRecommend:
        return []
    except Exception:
        logger.exception("Strategy %r v%s failed in %s()", model.name, model.version, call)
        return []


def compute_block(
    config: PlacementConfig, subject_id: int | None, consent: bool, limit: int,
    context_item: int | None, generation: Any, trace: Trace | None = None,
) -> tuple[list[Row], float | None, bool]:
    """Run the pipeline for one subject and placement.

    Args:
        config: the placement.
        subject_id: the subject's pk (``None``: an anonymous visitor without a subject).
        consent: whether the subject's history may be used.
        limit: how many items.
        context_item: the pk of the page's item, if any.
        generation: the serving generation (for the per-process catalog caches).
        trace: collects what each stage did, if given.

    Returns:
        ``(rows, intra_list_diversity, fallback_used)``.
    """
    index = catalog_index(generation)
    if len(index) == 0 or limit <= 0:
        return [], None, False
    personal = consent and subject_id is not None
    filters = config.filters
    history = History()
    event_types: list[str] = []
    excluded: list[int] = []
    if personal and subject_id is not None:
        events = subject_events(subject_id)
        history, event_types = events.history, events.event_types
        excluded = subject_excluded_items(subject_id, filters, events)
    # Fallback fills skip the history too, as strategies do: a block "for you"
    # does not offer back what the subject already engaged with.
    allowed = allowed_mask(index, filters, excluded_pks=[*excluded, *history.item_ids],
                           current_item=context_item)
    block = Block(index, allowed, limit, float(config.diversity), trace)
    oversample = max(1, int(personalize_settings.CANDIDATE_OVERSAMPLING))
    strategy_exclude = [*excluded, *blocked_pks(index, filters)]
    if context_item is not None:
        strategy_exclude.append(context_item)

    pinned = pinned_pks(index, filters)
    if pinned:
        block.offer("pinned", [(pk, 0.0) for pk in pinned], PINNED, False, constant(FEATURED))
    primary = config.strategy
    if personal and block.need > 0:
        model = active_model(primary)
        scored = _ranked(model, "recommend", history, block.need * oversample,
                         strategy_exclude + block.pks)
        if model is not None:
            block.offer(primary, scored, primary, len(history) > 0,
                        strategy_explainer(model, history, event_types, _generic(model, index)))
        elif trace is not None:
            trace.add(primary, 0, 0, note="no active model")
    filled_from = len(block.picks)
    fallback = config.fallback
    if block.need > 0 and fallback and fallback not in (
            primary, personalize_settings.POPULARITY_STRATEGY):
        model = active_model(fallback)
        used = history if personal else History()
        scored = _ranked(model, "recommend", used, block.need * oversample,
                         strategy_exclude + block.pks)
        if model is not None:
            # a fallback that answers without a history ranks for everyone
            generic = _generic(model, index, RECOMMENDED if len(used) else POPULAR_NOW)
            explain = strategy_explainer(model, used, event_types if personal else None, generic)
            block.offer(fallback, scored, fallback, personal and len(used) > 0, explain)
    if block.need > 0:  # the categories cost a pass over the history: only when filling
        categories = _context_categories(index, context_item)
        if personal and len(history):
            preferred = index.preferred_category(history.item_ids, history.weights)
            if preferred and preferred not in [c for c, _ in categories]:
                categories.append((preferred, True))
        _popular_stages(block, index, categories, oversample)
    fallback_used = len(block.picks) > filled_from
    rows, diversity = block.rows(generation)
    return rows, diversity, fallback_used


def compute_similar(
    item_pk: int, strategy: str, config: PlacementConfig | None, limit: int, generation: Any,
) -> list[Row]:
    """Items similar to ``item_pk`` by ``strategy``, filled with popular items of its category."""
    index = catalog_index(generation)
    if len(index) == 0 or limit <= 0:
        return []
    filters = config.filters if config is not None else FilterConfig()
    # the item itself is never "similar to itself", whatever the filters say
    allowed = allowed_mask(index, filters, excluded_pks=[item_pk])
    block = Block(index, allowed, limit, float(config.diversity) if config else 0.0)
    oversample = max(1, int(personalize_settings.CANDIDATE_OVERSAMPLING))
    model = active_model(strategy)
    scored = _ranked(model, "similar", item_pk, limit * oversample,
                     [item_pk, *blocked_pks(index, filters)])
    block.offer(strategy, scored, strategy, False, constant(similar_reason(model, item_pk)))
    _popular_stages(block, index, _context_categories(index, item_pk), oversample)
    return block.rows(generation)[0]


def _context_categories(index: CatalogIndex, item_pk: int | None) -> list[tuple[str, bool]]:
    """The primary category of the page's item, as a non-personalized fill."""
    if item_pk is None:
        return []
    found, _ = index.positions([item_pk])
    if found.size and index.primary[found[0]] >= 0:
        return [(index.category_names[int(index.primary[found[0]])], False)]
    return []


def _popular_stages(
    block: Block, index: CatalogIndex, categories: list[tuple[str, bool]], oversample: int
) -> None:
    """Fill from "popular in <category>" for each category, then globally popular items."""
    if block.need <= 0:
        return
    scores, _source = popularity(index)
    name = personalize_settings.POPULARITY_STRATEGY or "popular"
    for category, personalized in categories:
        if block.need <= 0:
            break
        column = index.category_column(category)
        if column is None:
            continue
        member = np.asarray(index.membership[:, [column]].toarray()).ravel() > 0
        masked = np.where(member & block.allowed & (scores > 0), scores, -np.inf)
        best = top_k(masked, block.need * oversample)
        block.offer(f"popular in {category}", _pairs(index, best, masked), name, personalized,
                    constant(popular_in(category)))
    if block.need > 0:
        # globally popular, then anything allowed so the block is always full
        masked = np.where(block.allowed, scores, -np.inf)
        best = top_k(masked, block.need * oversample)
        block.offer("popular", _pairs(index, best, masked), name, False,
                    _popular_explainer(index, scores))


def _generic(model: ActiveModel, index: CatalogIndex, default: Reason = RECOMMENDED) -> Explain:
    """What a strategy's picks say when it names no history item (its ``generic_reason``).

    Args:
        model: the live model.
        index: the catalog, for "Popular in <category>".
        default: the reason of a strategy that declares no particular one.
    """
    scores: np.ndarray | None = None

    def popular(pks: list[int]) -> list[Reason]:
        nonlocal scores
        if scores is None:  # read only when a pick needs it
            scores = popularity(index)[0]
        return _popular_explainer(index, scores)(pks)

    return generic_explainer(model, popular, default)


def _pairs(index: CatalogIndex, rows: np.ndarray, scores: np.ndarray) -> Scored:
    return list(zip(index.pks[rows].tolist(), scores[rows].tolist(), strict=True))


def _popular_explainer(index: CatalogIndex, scores: np.ndarray) -> Explain:
    """'Popular in <its category>', 'Popular right now', or 'You might also like'."""
    def reason(pk: int) -> Reason:
        row = int(np.searchsorted(index.pks, pk))
        if scores[row] > 0 and index.primary[row] >= 0:
            return popular_in(index.category_names[int(index.primary[row])])
        return POPULAR_NOW if scores[row] > 0 else MIGHT_ALSO_LIKE

    return lambda pks: [reason(pk) for pk in pks]
