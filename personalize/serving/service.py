"""The recommend verb: ``recommend()``, ``similar_items()`` and the admin's preview.

::

    request -> subject -> consent -> cache lookup --hit--> rows
                                          |
                                         miss -> pipeline (personalize.serving.pipeline) -> cache

* **Subject**: the person behind the request (:func:`personalize.identity.resolve_subject`);
  nothing is created for a visitor who has not been tracked.
* **Consent**: without ``personalization`` consent (or with a GPC / DNT
  header) nothing about the subject is read; the block holds popular items,
  each marked ``personalized=False``.
* **Cache**: :mod:`personalize.serving.cache`; a hit is one cache round trip,
  which also brings the subject's consent state.

:func:`recommend` gives :class:`Recommendation` objects holding the catalog
:class:`~personalize.models.Item`; :func:`recommend_rows` gives the cached
:class:`~personalize.serving.cache.Row` tuples themselves, which carry
everything the REST API renders, so a cached block goes to JSON without
touching an Item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import translation

from personalize.conf import personalize_settings
from personalize.consent.service import PERSONALIZATION, browser_signal, has_consent
from personalize.identity import resolve_subject
from personalize.identity.subjects import as_http_request
from personalize.models import Item, Subject
from personalize.serving import cache as block_cache
from personalize.serving.block import Trace
from personalize.serving.cache import BlockEntry, ModelKey, Row, SimilarEntry
from personalize.serving.catalog import ANY, CatalogIndex, catalog_index, get_items
from personalize.serving.loader import ActiveModel
from personalize.serving.pipeline import active_model, compute_block, compute_similar
from personalize.serving.placements import PlacementConfig, get_placement, load_placement
from personalize.serving.popularity import popularity
from personalize.serving.stats import stats


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
        explanation: a short, translated reason ("Because you bought X").
        url: the host object's ``get_absolute_url()`` (or ``attributes["url"]``), if any.
        attributes: the item's catalog attributes (the ``attributes`` of the
            ``CATALOG`` mapping: ``rec.attributes.price`` in a template).
    """

    item: Item
    score: float
    strategy: str
    personalized: bool
    explanation: str
    url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def external_id(self) -> str:
        return self.item.external_id

    @property
    def title(self) -> str:
        return self.item.title or self.item.external_id


#: Stores a computed block's cache entry: ``store(key, entry, ttl)``.
Store = Callable[[str, Any, int], None]


def _consent_config() -> tuple[Any, ...]:
    # A settings change that alters what counts as consent must not serve old entries.
    s = personalize_settings
    return (s.CONSENT_MODE, s.CONSENT_POLICY_VERSION, bool(s.CONSENT_REASK_ON_POLICY_CHANGE))


def _model_key(model: ActiveModel | None) -> ModelKey:
    return None if model is None else (model.name, int(model.version))


def _clamp_limit(limit: Any, default: int) -> int:
    wanted = default if limit is None else limit
    return max(0, min(int(wanted), int(personalize_settings.MAX_LIMIT)))


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


def _materialise(rows: Sequence[Row], generation: Any) -> list[Recommendation]:
    if not rows:
        return []
    items = get_items([r.pk for r in rows], generation)
    return [
        Recommendation(items[r.pk], r.score, r.strategy, r.personalized, r.explanation, r.url,
                       r.attributes)
        for r in rows
        if r.pk in items
    ]


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
    block; a row carries the item's pk, external id, title, categories and
    attributes instead of the :class:`~personalize.models.Item`.

    ``store`` receives a computed block's cache entry instead of it being
    written at once (``block_cache.write`` takes the same arguments): the REST
    view writes it after the response has gone out. An entry written late is
    as safe as one written at once: it counts only while the generations it
    carries are current.
    """
    return _serve(request_or_subject, placement, limit, context, store)[0]


def _subject_id(request_or_subject: Any) -> int | None:
    """The pk of the subject behind the argument of :func:`recommend` (never created)."""
    if request_or_subject is None:
        return None
    subject = resolve_subject(request_or_subject, create=False)
    return subject.pk if subject is not None else None


def _serve(
    request_or_subject: Any, placement: str, limit: int | None,
    context: dict[str, Any] | None, store: Store | None = None,
) -> tuple[list[Row], Any]:
    """The block's rows, from the cache or computed (and cached), and the global generation."""
    request = as_http_request(request_or_subject)
    # With a browser privacy signal, the shared non-personalized block is served.
    signal = browser_signal(request) if request is not None else None
    subject_id = None if signal else _subject_id(request_or_subject)
    context_item = resolve_item((context or {}).get("item"))
    entry_key = block_cache.block_key(placement, subject_id, limit, context_item,
                                      translation.get_language())
    subject_key = block_cache.subject_gen_key(subject_id) if subject_id is not None else ""
    keys = [block_cache.GLOBAL_GEN_KEY, entry_key, *([subject_key] if subject_key else [])]
    if subject_id is None:
        consent, values = False, block_cache.read(keys)
    else:
        consent, values = block_cache.read_with_consent(subject_id, keys)
    generation = block_cache.global_generation(values)
    config = get_placement(placement, generation)
    model = active_model(config.strategy)
    subject_generation = values.get(subject_key) if values is not None and subject_key else None
    entry = values.get(entry_key) if values is not None else None
    if isinstance(entry, BlockEntry) and (
        entry.generation, entry.subject_generation, entry.model, entry.consent
    ) == (generation, subject_generation, _model_key(model), _consent_config()):
        stats.record_hit(placement)
        return list(entry.rows), generation
    if not config.enabled:
        return [], generation
    n = _clamp_limit(limit, config.limit)
    rows, diversity, fallback = compute_block(config, subject_id, consent, n, context_item,
                                              generation)
    stats.record_computed(placement, diversity=diversity, n_items=len(rows), fallback=fallback)
    if values is not None:
        computed = BlockEntry(generation, subject_generation, _model_key(model),
                              _consent_config(), tuple(rows))
        (store or block_cache.write)(entry_key, computed, config.cache_ttl)
    return rows, generation


def preview(
    subject: Subject | None,
    placement: str = "home",
    limit: int | None = None,
    context: dict[str, Any] | None = None,
) -> tuple[list[Recommendation], Trace, PlacementConfig]:
    """Compute a block for ``subject`` without the cache, with a trace of each stage.

    For the admin's "preview as subject" page; consent is honoured as on the site.
    """
    config = load_placement(placement)
    generation = block_cache.global_generation(block_cache.read([block_cache.GLOBAL_GEN_KEY]))
    subject_id = subject.pk if subject is not None else None
    consent = subject_id is not None and has_consent(subject_id, PERSONALIZATION)
    trace = Trace(consent=consent, subject=subject.key if subject is not None else None,
                  source=popularity(catalog_index(generation))[1])
    context_item = resolve_item((context or {}).get("item"))
    n = _clamp_limit(limit, config.limit)
    rows, _, _ = compute_block(config, subject_id, consent, n, context_item, generation, trace)
    return _materialise(rows, generation), trace, config


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


def _similar_strategy(strategy: str | None, config: PlacementConfig | None) -> str:
    """The strategy that ranks similar items: the one asked for, the placement's, or the default."""
    if strategy:
        return strategy
    if config is not None and config.configured:
        return config.strategy
    return str(personalize_settings.SIMILAR_STRATEGY)


def _serve_similar(
    item: Any, limit: int, strategy: str | None, placement: str | None,
    store: Store | None = None,
) -> tuple[list[Row], Any]:
    """The similar-items block's rows, from the cache or computed, and the global generation."""
    item_pk = resolve_item(item)
    if item_pk is None:
        return [], None
    n = _clamp_limit(limit, limit)
    language = translation.get_language()
    config = get_placement(placement) if placement else None
    name = _similar_strategy(strategy, config)
    key = block_cache.similar_key(item_pk, name, placement, n, language)
    values = block_cache.read([block_cache.GLOBAL_GEN_KEY, key])
    generation = block_cache.global_generation(values)
    if placement:  # the placement as of this generation (an edit moves it)
        config = get_placement(placement, generation)
        name = _similar_strategy(strategy, config)
        key = block_cache.similar_key(item_pk, name, placement, n, language)
    if config is not None and not config.enabled:
        return [], generation
    model = active_model(name)
    entry = values.get(key) if values is not None else None
    if isinstance(entry, SimilarEntry) and (entry.generation, entry.model) == (
            generation, _model_key(model)):
        stats.record_hit(placement or "similar")
        return list(entry.rows), generation
    rows = compute_similar(item_pk, name, config, n, generation)
    stats.record_computed(placement or "similar", diversity=None, n_items=len(rows),
                          fallback=False)
    if values is not None:
        ttl = config.cache_ttl if config is not None else int(personalize_settings.CACHE_TTL)
        (store or block_cache.write)(key, SimilarEntry(generation, _model_key(model),
                                                       tuple(rows)), ttl)
    return rows, generation
