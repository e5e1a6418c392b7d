"""What serving hands out: a served block, its recommendations, and the helpers both share.

:class:`Served` is a block as :func:`personalize.serving.service.serve_block`
serves it: the rows and what an exposure of it records. :class:`Recommendation`
is one of its items with the catalog :class:`~personalize.models.Item` loaded
(:func:`materialise`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from personalize.conf import personalize_settings
from personalize.models import Item
from personalize.serving.cache import ModelKey, Row
from personalize.serving.catalog import ANY, CatalogIndex, catalog_index, get_items
from personalize.serving.loader import ActiveModel


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


@dataclass(frozen=True)
class Served:
    """A block as served, with what an exposure of it records.

    Attributes:
        rows: the block's rows, best first.
        generation: the serving generation it was read or computed under.
        placement: the placement (``"similar"`` for similar items without one).
        strategy: the strategy that produced the block: the placement's, or its
            variant's (``""`` for a holdout).
        model_version: the live version of that strategy, when the block holds
            its picks (``None``: filled by the fallback chain only).
        subject_id: the subject it was served to (``None``: a visitor without
            a subject, or a request with a GPC / DNT signal).
        analytics: whether that subject allows ``analytics`` (exposures, experiments).
        experiment_id: the running experiment the subject takes part in, if any.
        variant_id: the variant they were served in it.
        holdout: the subject is in a holdout variant: an empty block that still
            counts as an exposure.
        assignment_recorded: the subject's variant was already recorded (a first
            exposure records it).
    """

    rows: list[Row]
    generation: Any
    placement: str
    strategy: str
    model_version: int | None = None
    subject_id: int | None = None
    analytics: bool = False
    experiment_id: int | None = None
    variant_id: int | None = None
    holdout: bool = False
    assignment_recorded: bool = True

    @property
    def exposable(self) -> bool:
        """Whether showing this block is an exposure to log.

        A subject who allows ``analytics`` saw a block with items, or their
        holdout's empty block.
        """
        return self.subject_id is not None and self.analytics and (
            bool(self.rows) or self.holdout)


def consent_config() -> tuple[Any, ...]:
    """The site's consent configuration, part of every cached block."""
    # A settings change that alters what counts as consent must not serve old entries.
    s = personalize_settings
    return (s.CONSENT_MODE, s.CONSENT_POLICY_VERSION, bool(s.CONSENT_REASK_ON_POLICY_CHANGE))


def model_key(model: ActiveModel | None) -> ModelKey:
    """The model a block is computed with, as its cache entry records it."""
    return None if model is None else (model.name, int(model.version))


def clamp_limit(limit: Any, default: int) -> int:
    """The block size: ``limit`` (else ``default``) within ``0..MAX_LIMIT``."""
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


def materialise_rows(rows: Sequence[Row], generation: Any) -> list[Recommendation]:
    """Rows as :class:`Recommendation` objects (items of a generation are cached)."""
    if not rows:
        return []
    items = get_items([r.pk for r in rows], generation)
    return [
        Recommendation(items[r.pk], r.score, r.strategy, r.personalized, r.explanation, r.url,
                       r.attributes)
        for r in rows
        if r.pk in items
    ]


def materialise(served: Served) -> list[Recommendation]:
    """A served block's rows as :class:`Recommendation` objects (one item query, cached)."""
    return materialise_rows(served.rows, served.generation)


def model_version_of(model: ActiveModel | None, rows: Sequence[Row]) -> int | None:
    """The live version behind a block, when the block holds that strategy's picks."""
    if model is None or not any(row.strategy == model.name for row in rows):
        return None
    return int(model.version)
