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
touching an Item. :func:`serve_block` and :func:`serve_similar_block` give the
rows as a :class:`Served` block: with what an exposure of it records (the
strategy, its model version, the experiment and variant, whether the subject
allows ``analytics``), for the template tags and the REST API, which log
exposures (:mod:`personalize.outcomes.exposures`).

* **Experiment**: when the placement runs one
  (:func:`personalize.experiments.assignment.running_experiment`), the
  subject's variant changes the placement's configuration
  (:mod:`personalize.serving.variants`); each variant's block is cached under
  its own key, and the subject's assignment is read with it, in the same round
  trip. A holdout variant serves an empty block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.utils import translation

from personalize.conf import personalize_settings
from personalize.consent.service import PERSONALIZATION, browser_signal, has_consent
from personalize.experiments.assignment import (
    Arm,
    ExperimentConfig,
    assign,
    assignment_key,
    held_experiment,
    running_experiment,
)
from personalize.identity import resolve_subject
from personalize.identity.subjects import as_http_request
from personalize.models import Subject
from personalize.serving import cache as block_cache
from personalize.serving.block import Trace
from personalize.serving.cache import UNKNOWN, BlockEntry, Row, SimilarEntry
from personalize.serving.catalog import catalog_index
from personalize.serving.loader import ActiveModel
from personalize.serving.pipeline import active_model, compute_block, compute_similar
from personalize.serving.placements import PlacementConfig, get_placement, load_placement
from personalize.serving.popularity import popularity
from personalize.serving.served import (
    Recommendation,
    Served,
    Store,
    clamp_limit,
    consent_config,
    materialise,
    materialise_rows,
    model_key,
    model_version_of,
    resolve_item,
)
from personalize.serving.stats import stats
from personalize.serving.variants import apply_variant

__all__ = [
    "Recommendation", "Served", "Store", "materialise", "preview", "recommend",
    "recommend_rows", "resolve_item", "serve_block", "serve_similar_block", "similar_items",
    "similar_rows",
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
        empty catalog, a disabled placement or a holdout variant of an
        experiment. Logs no exposure (the template tags and the REST API do).
    """
    return materialise(serve_block(request_or_subject, placement, limit, context))


def recommend_rows(
    request_or_subject: Any,
    placement: str = "home",
    limit: int | None = None,
    context: dict[str, Any] | None = None,
    *,
    store: Store | None = None,
) -> list[Row]:
    """:func:`recommend` as :class:`Row` tuples, without loading the items.

    Takes the same arguments as :func:`recommend` and serves the same cached
    block; a row carries the item's pk, external id, title, categories and
    attributes instead of the :class:`~personalize.models.Item`. ``store`` as
    in :func:`serve_block`.
    """
    return serve_block(request_or_subject, placement, limit, context, store=store).rows


def _subject(request_or_subject: Any) -> Subject | None:
    """The subject behind the argument of :func:`recommend` (never created)."""
    if request_or_subject is None:
        return None
    return resolve_subject(request_or_subject, create=False)


def _audience(request_or_subject: Any) -> Subject | None:
    """The subject a block is served to; ``None`` with a GPC / DNT signal on the request."""
    request = as_http_request(request_or_subject)
    if request is not None and browser_signal(request):
        return None  # the shared non-personalized block, and nothing recorded
    return _subject(request_or_subject)


def serve_block(
    request_or_subject: Any,
    placement: str = "home",
    limit: int | None = None,
    context: dict[str, Any] | None = None,
    *,
    store: Store | None = None,
) -> Served:
    """:func:`recommend_rows` as a :class:`Served` block (for the tags and the REST API).

    Takes the same arguments as :func:`recommend`. ``store`` receives a
    computed block's cache entry instead of it being written at once
    (``block_cache.write`` takes the same arguments): the REST view writes it
    after the response has gone out. An entry written late is as safe as one
    written at once: it counts only while the generations it carries are current.
    """
    subject = _audience(request_or_subject)
    subject_id = subject.pk if subject is not None else None
    context_item = resolve_item((context or {}).get("item"))
    language = translation.get_language()

    def entry_key(variant: int | None) -> str:
        return block_cache.block_key(placement, subject_id, limit, context_item, language,
                                     variant)

    # The experiment this process holds, to read each variant's entry and the
    # subject's assignment in the same round trip; confirmed once the
    # generation is known (another one means a miss, never a wrong block).
    held = held_experiment(placement)
    keys = [block_cache.GLOBAL_GEN_KEY, *_variant_keys(held, subject_id, entry_key)]
    subject_key = block_cache.subject_gen_key(subject_id) if subject_id is not None else ""
    if subject_key:
        keys.append(subject_key)
    if subject_id is None:
        consent, analytics, values = False, False, block_cache.read(keys)
    else:
        consent, analytics, values = block_cache.read_with_consents(subject_id, keys)
    generation = block_cache.global_generation(values)
    config = get_placement(placement, generation)
    experiment = running_experiment(placement, None if generation is UNKNOWN else generation)
    arm: Arm | None = None
    if experiment is not None:
        cached = None
        if values is not None and subject_id is not None:
            cached = values.get(assignment_key(experiment.id, subject_id))
        arm = assign(experiment, subject_id, subject.key if subject is not None else None,
                     enrolled=analytics, cached=cached)
    variant = arm.variant if arm is not None else None
    config = apply_variant(config, variant)
    # only enrolled subjects are in the experiment (their exposure records it)
    enrolled = arm if arm is not None and arm.enrolled else None

    def served(rows: list[Row], model: ActiveModel | None = None, **extra: Any) -> Served:
        return Served(
            rows, generation, placement, config.strategy, model_version_of(model, rows),
            subject_id, analytics,
            experiment_id=enrolled.experiment.id if enrolled is not None else None,
            variant_id=enrolled.variant.id if enrolled is not None else None,
            assignment_recorded=enrolled.recorded if enrolled is not None else True, **extra,
        )

    if variant is not None and variant.is_holdout:
        # no recommendations; the exposure still counts the subject in its variant
        return replace(served([]), strategy="", holdout=config.enabled)
    key = entry_key(variant.id if variant is not None else None)
    model = active_model(config.strategy)
    subject_generation = values.get(subject_key) if values is not None and subject_key else None
    entry = values.get(key) if values is not None else None
    if isinstance(entry, BlockEntry) and (
        entry.generation, entry.subject_generation, entry.model, entry.consent
    ) == (generation, subject_generation, model_key(model), consent_config()):
        stats.record_hit(placement)
        return served(list(entry.rows), model)
    if not config.enabled:
        return served([])
    n = clamp_limit(limit, config.limit)
    rows, diversity, fallback = compute_block(config, subject_id, consent, n, context_item,
                                              generation)
    stats.record_computed(placement, diversity=diversity, n_items=len(rows), fallback=fallback)
    if values is not None:
        computed = BlockEntry(generation, subject_generation, model_key(model),
                              consent_config(), tuple(rows))
        (store or block_cache.write)(key, computed, config.cache_ttl)
    return served(rows, model)


def _variant_keys(
    experiment: ExperimentConfig | None, subject_id: int | None,
    entry_key: Callable[[int | None], str],
) -> list[str]:
    """The cache keys of a block: its entry, or each variant's entry and the assignment."""
    if experiment is None:
        return [entry_key(None)]
    if subject_id is None:  # no subject, no assignment: the control
        return [entry_key(experiment.control.id)]
    return [*(entry_key(v.id) for v in experiment.variants),
            assignment_key(experiment.id, subject_id)]


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
    n = clamp_limit(limit, config.limit)
    rows, _, _ = compute_block(config, subject_id, consent, n, context_item, generation, trace)
    return materialise_rows(rows, generation), trace, config


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
    return materialise(serve_similar_block(item, limit, strategy=strategy, placement=placement))


def similar_rows(
    item: Any,
    limit: int = 10,
    *,
    strategy: str | None = None,
    placement: str | None = None,
    store: Store | None = None,
) -> list[Row]:
    """:func:`similar_items` as :class:`Row` tuples, without loading the items (the REST API's).

    ``store`` as in :func:`serve_block`.
    """
    return serve_similar_block(item, limit, strategy=strategy, placement=placement,
                               store=store).rows


def _similar_strategy(strategy: str | None, config: PlacementConfig | None) -> str:
    """The strategy that ranks similar items: the one asked for, the placement's, or the default."""
    if strategy:
        return strategy
    if config is not None and config.configured:
        return config.strategy
    return str(personalize_settings.SIMILAR_STRATEGY)


def serve_similar_block(
    item: Any,
    limit: int = 10,
    *,
    strategy: str | None = None,
    placement: str | None = None,
    store: Store | None = None,
    audience: Any = None,
) -> Served:
    """:func:`similar_rows` as a :class:`Served` block (for the tags and the REST API).

    Args:
        item: as in :func:`similar_items`.
        limit: as in :func:`similar_items`.
        strategy: as in :func:`similar_items`.
        placement: as in :func:`similar_items`.
        store: as in :func:`serve_block`.
        audience: the request (or subject) the block is shown to: its subject
            and ``analytics`` consent are read with the block, for the exposure.
            ``None``: nobody in particular (no exposure can be logged).

    Similar items are the same for every visitor: a placement's experiment does
    not apply to them (experiments act on :func:`recommend` blocks).
    """
    name_of_placement = placement or "similar"
    subject = _audience(audience) if audience is not None else None
    subject_id = subject.pk if subject is not None else None
    item_pk = resolve_item(item)
    if item_pk is None:
        return Served([], None, name_of_placement, strategy or "", subject_id=subject_id)
    n = clamp_limit(limit, limit)
    language = translation.get_language()
    config = get_placement(placement) if placement else None
    name = _similar_strategy(strategy, config)
    key = block_cache.similar_key(item_pk, name, placement, n, language)
    keys = [block_cache.GLOBAL_GEN_KEY, key]
    if subject_id is None:
        analytics, values = False, block_cache.read(keys)
    else:
        _, analytics, values = block_cache.read_with_consents(subject_id, keys)
    generation = block_cache.global_generation(values)
    if placement:  # the placement as of this generation (an edit moves it)
        config = get_placement(placement, generation)
        name = _similar_strategy(strategy, config)
        key = block_cache.similar_key(item_pk, name, placement, n, language)
    if config is not None and not config.enabled:
        return Served([], generation, name_of_placement, name, subject_id=subject_id,
                      analytics=analytics)
    model = active_model(name)

    def served(rows: list[Row]) -> Served:
        return Served(rows, generation, name_of_placement, name, model_version_of(model, rows),
                      subject_id, analytics)

    entry = values.get(key) if values is not None else None
    if isinstance(entry, SimilarEntry) and (entry.generation, entry.model) == (
            generation, model_key(model)):
        stats.record_hit(placement or "similar")
        return served(list(entry.rows))
    rows = compute_similar(item_pk, name, config, n, generation)
    stats.record_computed(placement or "similar", diversity=None, n_items=len(rows),
                          fallback=False)
    if values is not None:
        ttl = config.cache_ttl if config is not None else int(personalize_settings.CACHE_TTL)
        (store or block_cache.write)(key, SimilarEntry(generation, model_key(model),
                                                       tuple(rows)), ttl)
    return served(rows)
