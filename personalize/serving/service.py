"""The recommend pipeline: ``recommend()`` and ``similar_items()``.

::

    placement -> consent -> strategy candidates -> business filters -> diversity re-rank
              -> fallback fill -> explanations -> cache

* **Placement**: the admin-configured slot, looked up by name (defaults for an
  unknown name), see :mod:`personalize.serving.placements`.
* **Consent**: without ``personalization`` consent (or with a GPC / DNT
  header) nothing about the subject is read; the block holds popular items,
  each marked ``personalized=False``.
* **Candidates**: the active model of the placement's strategy ranks
  ``limit * CANDIDATE_OVERSAMPLING`` items for the subject's history, so
  filtering and re-ranking still leave a full block.
* **Filters**: :mod:`personalize.serving.filters` (already bought, availability,
  categories, pinned, blocked, the page's own item).
* **Re-rank**: MMR with the placement's ``diversity`` (:mod:`personalize.serving.rerank`).
* **Fallback**: the placement's fallback strategy, then "popular in" the page's
  or the subject's favourite category, then globally popular items, until the
  block is full. An empty catalog gives an empty list.
* **Explanations**: "Because you viewed <title>" (the strategy's ``explain_many``),
  "Popular in <category>", "Similar to <title>", "Featured".
* **Cache**: :mod:`personalize.serving.cache`; a hit is one cache round trip
  (which also brings the subject's consent state) and no query.

:func:`recommend` gives :class:`Recommendation` objects holding the catalog
:class:`~personalize.models.Item`; :func:`recommend_rows` gives the cached
:class:`Row` tuples themselves, which carry everything the REST API renders,
so a cached block goes to JSON without touching an Item.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from django.db import models
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from personalize.conf import personalize_settings
from personalize.models import Item, Subject
from personalize.serving import cache as block_cache
from personalize.serving.catalog import (
    ANY,
    CatalogIndex,
    catalog_index,
    get_items,
    known_urls,
    remember_urls,
)
from personalize.serving.filters import (
    allowed_mask,
    blocked_pks,
    pinned_pks,
    subject_excluded_items,
)
from personalize.serving.placements import PlacementConfig, get_placement
from personalize.serving.popularity import popularity
from personalize.serving.rerank import intra_list_diversity, mmr, similarity_matrix, stats
from personalize.serving.subjects import subject_id_for
from personalize.strategies.base import CannotRecommend, History, top_k

logger = logging.getLogger(__name__)

#: Bumped when the cached entry layout changes, so old entries are ignored.
ENTRY_FORMAT = 2
PINNED = "pinned"


class Row(NamedTuple):
    """One item of a block, with what the REST API shows of it.

    Cached as a plain tuple (an entry must unpickle whatever this class
    becomes; :data:`ENTRY_FORMAT` says which layout it has). ``external_id``,
    ``title`` and ``categories`` are copied from the item when the block is
    computed (the global generation moves when an item changes), so a cached
    block is rendered without loading items.
    """

    pk: int
    score: float
    strategy: str
    personalized: bool
    explanation: str
    url: str | None
    external_id: str
    title: str
    categories: Any


@dataclass(frozen=True)
class Recommendation:
    """One recommended item.

    Attributes:
        item: the catalog item.
        score: the score of the stage that picked it (strategy score, popularity, ...);
            comparable only within one strategy.
        strategy: the name of what picked it: a strategy name, the popularity
            strategy for fallback fills, or ``"pinned"``.
        personalized: whether the subject's own history chose it.
        explanation: a short, translated reason ("Because you viewed X").
        url: the host object's ``get_absolute_url()`` (or ``attributes["url"]``), if any.
    """

    item: Item
    score: float
    strategy: str
    personalized: bool
    explanation: str
    url: str | None = None

    @property
    def external_id(self) -> str:
        return self.item.external_id

    @property
    def title(self) -> str:
        return self.item.title or self.item.external_id


@dataclass
class Trace:
    """What each stage of one computation did (the admin preview shows it)."""

    consent: bool | None = None
    subject: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    diversity: float | None = None
    source: str = ""

    def add(self, stage: str, offered: int, kept: int, **extra: Any) -> None:
        self.stages.append({"stage": stage, "offered": offered, "kept": kept, **extra})


# --- helpers -----------------------------------------------------------------


def _as_request(obj: Any) -> HttpRequest | None:
    inner = getattr(obj, "_request", obj)
    return inner if isinstance(inner, HttpRequest) else None


def _browser_signal(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    from personalize.consent.service import browser_signal

    return browser_signal(request)


def _consent(subject_id: int, request: HttpRequest | None) -> bool:
    from personalize.consent.service import has_consent

    return bool(has_consent(subject_id, "personalization", request))


def _consent_config() -> tuple[Any, ...]:
    # A settings change that alters what counts as consent must not serve old entries.
    s = personalize_settings
    return (s.CONSENT_MODE, s.CONSENT_POLICY_VERSION, bool(s.CONSENT_REASK_ON_POLICY_CHANGE))


def _active_model(name: str | None) -> Any:
    if not name:
        return None
    from personalize.training.active import get_active_model

    try:
        return get_active_model(name)
    except Exception:
        logger.warning("Cannot load the active model of %r", name, exc_info=True)
        return None


def _model_key(model: Any) -> tuple[str, int] | None:
    return None if model is None else (model.name, int(model.version))


def _clamp_limit(limit: Any, default: int) -> int:
    if limit is None:
        return max(0, min(int(default), int(personalize_settings.MAX_LIMIT)))
    return max(0, min(int(limit), int(personalize_settings.MAX_LIMIT)))


def resolve_item(obj: Any, index: CatalogIndex | None = None) -> int | None:
    """The ``Item.pk`` behind an Item, a host catalog object, an external id or a pk.

    Returns:
        The pk, or ``None`` when nothing in the catalog matches.
    """
    if obj is None:
        return None
    if isinstance(obj, Item):
        return obj.pk
    index = index or catalog_index(ANY)
    if isinstance(obj, str):
        return index.external_ids.get(obj)
    if isinstance(obj, int) and not isinstance(obj, bool):
        rows, _ = index.positions([obj])
        return obj if rows.size else None
    if isinstance(obj, models.Model) and obj.pk is not None:
        from django.contrib.contenttypes.models import ContentType

        content_type = ContentType.objects.get_for_model(obj)
        pk = index.host_keys.get((content_type.pk, str(obj.pk)))
        if pk is None:  # an object created after the index was built
            pk = (
                Item.objects.filter(content_type=content_type, object_id=str(obj.pk))
                .values_list("pk", flat=True)
                .first()
            )
        return pk
    return None


def _urls(items: dict[int, Item]) -> dict[int, str | None]:
    """Each item's page URL: its host object's ``get_absolute_url``, one query per host model."""
    urls: dict[int, str | None] = {}
    by_type: dict[int, dict[str, int]] = {}
    for pk, item in items.items():
        url = item.attributes.get("url") if isinstance(item.attributes, dict) else None
        urls[pk] = str(url) if url else None
        if item.content_type_id and item.object_id:
            by_type.setdefault(item.content_type_id, {})[item.object_id] = pk
    if not by_type:
        return urls
    from django.contrib.contenttypes.models import ContentType

    for type_id, objects in by_type.items():
        model = ContentType.objects.get_for_id(type_id).model_class()
        if model is None or not hasattr(model, "get_absolute_url"):
            continue
        try:
            hosts = model._default_manager.in_bulk(list(objects))
        except (ValueError, TypeError):  # object ids that are not valid pks of the host model
            continue
        for object_id, host in hosts.items():
            found = objects.get(str(object_id))
            if found is None:
                continue
            pk = found
            try:
                urls[pk] = host.get_absolute_url()
            except Exception:
                logger.warning("get_absolute_url() failed for %r", host, exc_info=True)
    return urls


# --- the pipeline ------------------------------------------------------------


class _Block:
    """Collects a block stage by stage: each stage offers ranked candidates.

    The block owns ``allowed`` and strikes each picked item off it.
    """

    def __init__(
        self, index: CatalogIndex, allowed: np.ndarray, limit: int, diversity: float,
        trace: Trace | None,
    ) -> None:
        self.index = index
        self.allowed = allowed
        self.limit = limit
        self.diversity = diversity
        self.trace = trace
        self.pks: list[int] = []
        self.rows: list[tuple[int, float, str, bool, Render]] = []
        #: the last similarity matrix computed, and the pks of its rows
        self.sim: tuple[list[int], np.ndarray] | None = None

    def similarity(self, pks: list[int]) -> np.ndarray:
        """Pairwise similarity of ``pks``, from the last matrix when it covers them."""
        if self.sim is not None:
            known, matrix = self.sim
            where = {pk: n for n, pk in enumerate(known)}
            if all(pk in where for pk in pks):
                rows = np.asarray([where[pk] for pk in pks], dtype=np.int64)
                return matrix[rows[:, None], rows]  # np.ix_, cheaper
        matrix = similarity_matrix(self.index, pks)
        self.sim = (list(pks), matrix)
        return matrix

    @property
    def need(self) -> int:
        return self.limit - len(self.pks)

    def offer(
        self,
        stage: str,
        scored: Sequence[tuple[Any, float]],
        strategy: str,
        personalized: bool,
        explain: Explain,
    ) -> None:
        """Add the best allowed, new candidates of a stage (MMR-ordered when diversity is on)."""
        if self.need <= 0 or not scored:
            if self.trace is not None and scored:
                self.trace.add(stage, len(scored), 0)
            return
        ids = np.asarray([pk for pk, _ in scored])
        scores = np.asarray([score for _, score in scored], dtype=np.float64)
        rows, found = self.index.positions(ids)
        keep = self.allowed[rows]
        ids = ids[found][keep].astype(np.int64, copy=False)
        scores, rows = scores[found][keep], rows[keep]
        if len(set(ids.tolist())) < ids.size:
            # first occurrence only; the block may not repeat an item
            _, first = np.unique(ids, return_index=True)
            first.sort()
            ids, scores, rows = ids[first], scores[first], rows[first]
        order: list[int]
        if self.diversity > 0 and ids.size > 1:
            pool = self.pks + ids.tolist()
            sim = self.similarity(pool)
            order = mmr(scores, sim, self.diversity, self.need, selected=range(len(self.pks)))
        else:
            order = list(range(min(self.need, ids.size)))
        picked = ids[order].tolist()
        for i, pk, render in zip(order, picked, explain(picked), strict=True):
            self.pks.append(pk)
            self.rows.append((pk, float(scores[i]), strategy, personalized, render))
        self.allowed[rows[order]] = False
        if self.trace is not None:
            self.trace.add(stage, len(scored), len(order), strategy=strategy)


# An item's explanation, rendered by _finish from the block's items (for titles) and a
# translation function (each message is translated once per block, not once per item).
Render = Callable[[dict[int, Item], Callable[[str], str]], str]
# A stage's explainer: the Render of each item it picked (pks, in order), in one call.
Explain = Callable[[list[int]], list[Render]]


def _message(message: str) -> Render:
    """A fixed explanation; ``message`` is an untranslated message id."""
    return lambda items, translate: translate(message)


def _constant(render: Render) -> Explain:
    """An explainer giving every item of a stage the same explanation."""
    return lambda pks: [render] * len(pks)


def _popular_in(category: str) -> Render:
    return lambda items, translate: translate(
        gettext_noop("Popular in %(category)s")) % {"category": category}


def _because(history_pk: Any) -> Render:
    def render(items: dict[int, Item], translate: Callable[[str], str]) -> str:
        item = items.get(history_pk)
        if item is None:
            return translate(gettext_noop("Recommended for you"))
        return translate(gettext_noop("Because you viewed %(title)s")) % {
            "title": item.title or item.external_id}

    render.history_pk = history_pk  # type: ignore[attr-defined]
    return render


def _similar_to(pk: int) -> Render:
    def render(items: dict[int, Item], translate: Callable[[str], str]) -> str:
        item = items.get(pk)
        title = item.title or item.external_id if item is not None else ""
        return translate(gettext_noop("Similar to %(title)s")) % {"title": title}

    render.history_pk = pk  # type: ignore[attr-defined]
    return render


def _run_strategy(
    model: Any, call: str, *args: Any
) -> list[tuple[Any, float]]:
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


def _explainer(model: Any, history: History) -> Explain:
    """The strategy's reasons for a stage's picks: one ``explain_many`` call.

    Should it fail, each item is asked on its own with ``explain``, so one bad
    item costs only its own reason ("Recommended for you").
    """
    def sources(pks: list[int]) -> list[Any]:
        try:
            found = list(model.strategy.explain_many(model.artifact, history, pks))
            if len(found) == len(pks):
                return found
            logger.debug("explain_many() gave %d answers for %d items", len(found), len(pks))
        except Exception:
            logger.debug("explain_many() failed for %s", pks, exc_info=True)
        return [one(pk) for pk in pks]

    def one(pk: int) -> Any:
        try:
            return model.strategy.explain(model.artifact, history, pk)
        except Exception:
            logger.debug("explain() failed for %s", pk, exc_info=True)
            return None

    def explain(pks: list[int]) -> list[Render]:
        return [_render_source(source) for source in sources(pks)] if pks else []

    return explain


def _render_source(source: Any) -> Render:
    """The reason naming ``source`` ("Because you viewed X"), else the generic one."""
    if source is None:
        return _message(gettext_noop("Recommended for you"))
    try:
        return _because(int(source))
    except (TypeError, ValueError):  # ids that are not Item pks cannot be titled
        return _message(gettext_noop("Recommended for you"))


def _popular_stages(
    block: _Block, index: CatalogIndex, categories: list[tuple[str, bool]], oversample: int
) -> bool:
    """Fill from "popular in <category>" for each category, then globally popular items.

    Returns:
        Whether popularity filled anything.
    """
    if block.need <= 0:
        return False
    before = len(block.pks)
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
        block.offer(
            f"popular in {category}", list(zip(index.pks[best].tolist(), masked[best].tolist(),
                                               strict=True)),
            name, personalized, _constant(_popular_in(category)),
        )
    if block.need > 0:
        # globally popular, then anything allowed so the block is always full
        masked = np.where(block.allowed, scores, -np.inf)
        best = top_k(masked, block.need * oversample)
        names = index.category_names

        def explain_one(pk: int) -> Render:
            row = int(np.searchsorted(index.pks, pk))
            if scores[row] > 0 and index.primary[row] >= 0:
                return _popular_in(names[int(index.primary[row])])
            if scores[row] > 0:
                return _message(gettext_noop("Popular right now"))
            return _message(gettext_noop("You might also like"))

        def explain(pks: list[int]) -> list[Render]:
            return [explain_one(pk) for pk in pks]

        block.offer("popular", list(zip(index.pks[best].tolist(), masked[best].tolist(),
                                        strict=True)), name, False, explain)
    return len(block.pks) > before


#: Settings whose change makes Django read its translation catalogs anew.
TRANSLATION_SETTINGS = frozenset({"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS", "INSTALLED_APPS"})


@functools.lru_cache(maxsize=256)
def _translated(language: str | None, message: str) -> str:
    """``gettext(message)`` while ``language`` is active (the caller's), kept per process.

    Explanations repeat a handful of messages; Django's ``gettext`` costs a
    context-local lookup and a catalog search per call. ``language`` keys the
    cache; it is cleared when a setting that reloads the catalogs changes
    (:func:`forget_translations`).
    """
    return gettext(message)


def forget_translations() -> None:
    """Drop the cached explanation messages (a receiver calls it on a settings change)."""
    _translated.cache_clear()


def _finish(block: _Block, generation: Any, trace: Trace | None, language: str | None
            ) -> tuple[list[Row], float | None]:
    """Explanations and URLs for the picked rows (one item query), and the list's diversity.

    ``language`` is the active language (``translation.get_language()``).
    """
    history_pks = [
        getattr(render, "history_pk", None) for *_, render in block.rows
    ]
    wanted = block.pks + [pk for pk in history_pks if pk is not None]
    items = get_items(wanted, generation)
    urls = known_urls(block.pks, generation)
    missing = {pk: items[pk] for pk in block.pks if pk in items and pk not in urls}
    if missing:
        found = _urls(missing)
        remember_urls(found, generation)
        urls.update(found)
    translate = functools.partial(_translated, language)
    rows = [
        Row(pk, score, strategy, personalized, render(items, translate), urls.get(pk),
            items[pk].external_id, items[pk].title, items[pk].categories)
        for pk, score, strategy, personalized, render in block.rows
        if pk in items
    ]
    diversity = None
    if len(rows) >= 2:
        diversity = intra_list_diversity(block.similarity([r[0] for r in rows]))
    if trace is not None:
        trace.diversity = diversity
    return rows, diversity


def compute_block(
    config: PlacementConfig,
    subject_id: int | None,
    consent: bool,
    limit: int,
    context_item: int | None,
    generation: Any,
    trace: Trace | None = None,
    language: str | None = None,
) -> tuple[list[Row], float | None, bool]:
    """Run the pipeline without the cache.

    Args:
        config: the placement.
        subject_id: the subject's pk (``None``: an anonymous visitor without a subject).
        consent: whether the subject's history may be used.
        limit: how many items.
        context_item: the pk of the page's item, if any.
        generation: the serving generation (for the per-process catalog caches).
        trace: collects what each stage did, if given.
        language: the active language, when the caller has it (``None``: asked here).

    Returns:
        ``(rows, intra_list_diversity, fallback_used)``.
    """
    index = catalog_index(generation)
    if len(index) == 0 or limit <= 0:
        return [], None, False
    personal = consent and subject_id is not None
    filters = config.filters
    history = History()
    excluded: list[int] = []
    if personal and subject_id is not None:
        from personalize.tracking.history import subject_events

        events = subject_events(subject_id)
        history = events.history
        excluded = subject_excluded_items(subject_id, filters, events)
    # Fallback fills skip the history too, as strategies do: a block "for you"
    # does not offer back what the subject already engaged with.
    allowed = allowed_mask(index, filters, excluded_pks=[*excluded, *history.item_ids],
                           current_item=context_item)
    block = _Block(index, allowed, limit, float(config.diversity), trace)
    oversample = max(1, int(personalize_settings.CANDIDATE_OVERSAMPLING))
    strategy_exclude = [*excluded, *blocked_pks(index, filters)]
    if context_item is not None:
        strategy_exclude.append(context_item)

    pinned = pinned_pks(index, filters)
    if pinned:
        block.offer("pinned", [(pk, 0.0) for pk in pinned], PINNED, False,
                    _constant(_message(gettext_noop("Featured"))))
    primary = config.strategy
    if personal and block.need > 0:
        model = _active_model(primary)
        scored = _run_strategy(model, "recommend", history, block.need * oversample,
                               strategy_exclude + block.pks)
        if model is not None:
            block.offer(primary, scored, primary, len(history) > 0, _explainer(model, history))
        elif trace is not None:
            trace.add(primary, 0, 0, note="no active model")
    filled_from = len(block.pks)
    fallback = config.fallback
    popular_name = personalize_settings.POPULARITY_STRATEGY
    if block.need > 0 and fallback and fallback not in (primary, popular_name):
        model = _active_model(fallback)
        used = history if personal else History()
        scored = _run_strategy(model, "recommend", used, block.need * oversample,
                               strategy_exclude + block.pks)
        if model is not None:
            explain = (_explainer(model, used) if len(used)
                       else _constant(_message(gettext_noop("Popular right now"))))
            block.offer(fallback, scored, fallback, personal and len(used) > 0, explain)
    if block.need > 0:  # the categories cost a pass over the history: only when filling
        categories: list[tuple[str, bool]] = []
        if context_item is not None:
            found, _ = index.positions([context_item])
            if found.size and index.primary[found[0]] >= 0:
                categories.append((index.category_names[int(index.primary[found[0]])], False))
        if personal and len(history):
            preferred = index.preferred_category(history.item_ids, history.weights)
            if preferred and preferred not in [c for c, _ in categories]:
                categories.append((preferred, True))
        _popular_stages(block, index, categories, oversample)
    fallback_used = len(block.pks) > filled_from
    rows, diversity = _finish(block, generation, trace,
                              language or translation.get_language())
    return rows, diversity, fallback_used


def _materialise(rows: Sequence[Row], generation: Any) -> list[Recommendation]:
    if not rows:
        return []
    items = get_items([r.pk for r in rows], generation)
    return [
        Recommendation(items[r.pk], r.score, r.strategy, r.personalized, r.explanation, r.url)
        for r in rows
        if r.pk in items
    ]


def _cached_rows(rows: Sequence[tuple[Any, ...]]) -> list[Row]:
    return [Row(*r) for r in rows]


def _storable(rows: Sequence[Row]) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(r) for r in rows)


def recommend(
    request_or_subject: Any,
    placement: str = "home",
    limit: int | None = None,
    context: dict[str, Any] | None = None,
) -> list[Recommendation]:
    """Recommendations for a visitor in one placement, best first.

    Args:
        request_or_subject: an ``HttpRequest`` / DRF ``Request`` (the visitor
            behind it; GPC / DNT headers count as no consent), a user, a
            :class:`~personalize.models.Subject`, or ``None`` (an anonymous
            visitor: non-personalized). Never creates a subject.
        placement: the placement name; an unknown name uses the defaults.
        limit: how many items (default: the placement's limit; at most ``MAX_LIMIT``).
        context: page context; ``{"item": ...}`` (an Item, a host catalog
            object or an external id) on a product page excludes that item and
            prefers its category for fallback fills.

    Returns:
        Up to ``limit`` :class:`Recommendation` objects; an empty list for an
        empty catalog or a disabled placement.
    """
    rows, generation = _serve(request_or_subject, placement, limit, context)
    return _materialise(rows, generation)


#: Stores a computed block's cache entry: ``store(key, entry, ttl)``.
Store = Callable[[str, Any, int], None]


def recommend_rows(
    request_or_subject: Any,
    placement: str = "home",
    limit: int | None = None,
    context: dict[str, Any] | None = None,
    *,
    store: Store | None = None,
) -> list[Row]:
    """:func:`recommend` as :class:`Row` tuples, without loading the items (the REST API's).

    Takes the same arguments as :func:`recommend` and serves the same cached
    block; a row carries the item's pk, external id, title and categories
    instead of the :class:`~personalize.models.Item`.

    ``store`` receives a computed block's cache entry instead of it being
    written at once (``block_cache.write`` takes the same arguments): the REST
    view writes it after the response has gone out. An entry written late is
    as safe as one written at once: it counts only while the generations it
    carries are current.
    """
    return _serve(request_or_subject, placement, limit, context, store)[0]


def _serve(
    request_or_subject: Any,
    placement: str,
    limit: int | None,
    context: dict[str, Any] | None,
    store: Store | None = None,
) -> tuple[list[Row], Any]:
    """The block's rows, from the cache or computed (and cached), and the global generation."""
    request = _as_request(request_or_subject)
    # With a browser privacy signal, the shared non-personalized block is served.
    signal = _browser_signal(request)
    subject_id, remembered = (None, False) if signal else subject_id_for(request_or_subject)
    config = get_placement(placement)
    context_item = resolve_item((context or {}).get("item"))
    language = translation.get_language()
    model = _active_model(config.strategy)
    lookup = _Lookup(placement, subject_id, limit, context_item, language)
    consent, values = lookup.read()
    if values is not None and remembered and values.get(lookup.subject_key) == \
            block_cache.TOMBSTONE:
        # the remembered subject was deleted or merged: resolve the request again
        subject_id, _ = subject_id_for(request_or_subject, fresh=True)
        lookup = _Lookup(placement, subject_id, limit, context_item, language)
        consent, values = lookup.read()
    generation = block_cache.global_generation(values)
    subject_generation = None
    if values is not None:
        fresh = get_placement(placement, generation)
        if fresh is not config:
            config = fresh
            model = _active_model(config.strategy)
        subject_generation = values.get(lookup.subject_key) if lookup.subject_key else None
        if subject_generation == block_cache.TOMBSTONE and subject_id is not None:
            # resolved from the database just now, so the subject is alive
            # (consent revoked, not deleted): give it a live generation again
            block_cache.bump_subjects([subject_id])
            subject_generation = None
        entry = values.get(lookup.entry_key)
        if (
            isinstance(entry, tuple)
            and len(entry) == 6
            and entry[:5] == (ENTRY_FORMAT, generation, subject_generation, _model_key(model),
                              _consent_config())
        ):
            stats.record_hit(placement)
            return _cached_rows(entry[5]), generation
    else:
        config = get_placement(placement, generation)  # re-read: no generation to trust
    if not config.enabled:
        return [], generation
    n = _clamp_limit(limit, config.limit)
    rows, diversity, fallback = compute_block(
        config, subject_id, consent, n, context_item, generation, language=language
    )
    stats.record_computed(placement, diversity=diversity, n_items=len(rows), fallback=fallback)
    if values is not None and subject_generation != block_cache.TOMBSTONE:
        entry_value = (ENTRY_FORMAT, generation, subject_generation, _model_key(model),
                       _consent_config(), _storable(rows))
        (store or block_cache.write)(lookup.entry_key, entry_value, config.cache_ttl)
    return rows, generation


class _Lookup:
    """The cache keys of one block lookup, and the one round trip that reads them."""

    def __init__(self, placement: str, subject_id: int | None, limit: int | None,
                 context_item: int | None, language: str | None) -> None:
        self.subject_id = subject_id
        self.entry_key = block_cache.block_key(placement, subject_id, limit, context_item,
                                               language)
        self.subject_key = (block_cache.subject_gen_key(subject_id)
                            if subject_id is not None else "")
        self.keys = [block_cache.GLOBAL_GEN_KEY, self.entry_key]
        if self.subject_key:
            self.keys.append(self.subject_key)

    def read(self) -> tuple[bool, dict[str, Any] | None]:
        """``(personalization consent, the cached values)``: one ``get_many``."""
        if self.subject_id is None:
            return False, block_cache.read(self.keys)
        return block_cache.read_with_consent(self.subject_id, self.keys)


def preview(
    subject: Subject | None,
    placement: str = "home",
    limit: int | None = None,
    context: dict[str, Any] | None = None,
) -> tuple[list[Recommendation], Trace, PlacementConfig]:
    """Compute a block for ``subject`` without the cache, with a trace of each stage.

    For the admin's "preview as subject" page; consent is honoured as on the site.
    """
    from personalize.serving.placements import load_placement

    config = load_placement(placement)
    generation = block_cache.global_generation(block_cache.read([block_cache.GLOBAL_GEN_KEY]))
    subject_id = subject.pk if subject is not None else None
    consent = subject_id is not None and _consent(subject_id, None)
    trace = Trace(consent=consent, subject=subject.key if subject is not None else None,
                  source=popularity(catalog_index(generation))[1])
    context_item = resolve_item((context or {}).get("item"))
    n = _clamp_limit(limit, config.limit)
    rows, _, _ = compute_block(config, subject_id, consent, n, context_item, generation, trace)
    return _materialise(rows, generation), trace, config


def _similar_rows(
    item_pk: int, strategy: str, config: PlacementConfig | None, limit: int, generation: Any,
    language: str | None,
) -> list[Row]:
    index = catalog_index(generation)
    rows_found, _ = index.positions([item_pk])
    if len(index) == 0 or limit <= 0:
        return []
    from personalize.serving.filters import FilterConfig

    filters = config.filters if config is not None else FilterConfig()
    # the item itself is never "similar to itself", whatever the filters say
    allowed = allowed_mask(index, filters, excluded_pks=[item_pk])
    block = _Block(index, allowed, limit, float(config.diversity) if config else 0.0, None)
    oversample = max(1, int(personalize_settings.CANDIDATE_OVERSAMPLING))
    model = _active_model(strategy)
    scored = _run_strategy(model, "similar", item_pk, limit * oversample,
                           [item_pk, *blocked_pks(index, filters)])
    block.offer(strategy, scored, strategy, False, _constant(_similar_to(item_pk)))
    categories: list[tuple[str, bool]] = []
    if rows_found.size and index.primary[rows_found[0]] >= 0:
        categories.append((index.category_names[int(index.primary[rows_found[0]])], False))
    _popular_stages(block, index, categories, oversample)
    rows, _ = _finish(block, generation, None, language)
    return rows


def similar_items(
    item: Any,
    limit: int = 10,
    *,
    strategy: str | None = None,
    placement: str | None = None,
) -> list[Recommendation]:
    """Items similar to ``item`` (the same for every visitor), best first.

    Args:
        item: an :class:`~personalize.models.Item`, a host catalog object or an external id.
        limit: how many items (at most ``MAX_LIMIT``).
        strategy: the strategy whose ``similar()`` ranks them (default: the
            placement's strategy, else ``SIMILAR_STRATEGY``).
        placement: a placement whose filters and diversity apply.

    Returns:
        Up to ``limit`` recommendations (``personalized=False``), filled with
        popular items of the item's category when the strategy cannot answer;
        an empty list when ``item`` is not in the catalog.
    """
    rows, generation = _serve_similar(item, limit, strategy, placement)
    return _materialise(rows, generation)


def similar_rows(
    item: Any,
    limit: int = 10,
    *,
    strategy: str | None = None,
    placement: str | None = None,
    store: Store | None = None,
) -> list[Row]:
    """:func:`similar_items` as :class:`Row` tuples, without loading the items (the REST API's).

    ``store`` as in :func:`recommend_rows`.
    """
    return _serve_similar(item, limit, strategy, placement, store)[0]


def _serve_similar(
    item: Any, limit: int, strategy: str | None, placement: str | None,
    store: Store | None = None,
) -> tuple[list[Row], Any]:
    """The similar-items block's rows, from the cache or computed, and the global generation."""
    item_pk = resolve_item(item)
    if item_pk is None:
        return [], None
    config = get_placement(placement) if placement else None
    n = _clamp_limit(limit, limit)
    language = translation.get_language()

    def strategy_name(cfg: PlacementConfig | None) -> str:
        if strategy:
            return strategy
        if cfg is not None and cfg.configured:
            return cfg.strategy
        return str(personalize_settings.SIMILAR_STRATEGY)

    name = strategy_name(config)
    key = block_cache.similar_key(item_pk, name, placement, n, language)
    values = block_cache.read([block_cache.GLOBAL_GEN_KEY, key])
    generation = block_cache.global_generation(values)
    if placement:
        config = get_placement(placement, generation)
        name = strategy_name(config)
        key = block_cache.similar_key(item_pk, name, placement, n, language)
    if config is not None and not config.enabled:
        return [], generation
    model = _active_model(name)
    entry = values.get(key) if values is not None else None
    if (
        isinstance(entry, tuple)
        and len(entry) == 4
        and entry[:3] == (ENTRY_FORMAT, generation, _model_key(model))
    ):
        stats.record_hit(placement or "similar")
        return _cached_rows(entry[3]), generation
    rows = _similar_rows(item_pk, name, config, n, generation, language)
    stats.record_computed(placement or "similar", diversity=None, n_items=len(rows),
                          fallback=False)
    if values is not None:
        ttl = config.cache_ttl if config is not None else int(personalize_settings.CACHE_TTL)
        (store or block_cache.write)(
            key, (ENTRY_FORMAT, generation, _model_key(model), _storable(rows)), ttl)
    return rows, generation
