"""A block under construction: each stage offers ranked candidates, the block keeps the best.

:class:`Block` owns the mask of items the block may still show and strikes off
each item it picks; with a placement's ``diversity`` above 0 it orders each
stage's picks by maximal marginal relevance against what it already holds.
:meth:`Block.rows` turns the picks into the cached :class:`Row` tuples: the
items' fields and attributes, their page URLs and their translated explanations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.contrib.contenttypes.models import ContentType

from personalize.models import Item
from personalize.serving.cache import Row
from personalize.serving.catalog import CatalogIndex, get_items, known_urls, remember_urls
from personalize.serving.explanations import Explain, Reason
from personalize.serving.rerank import intra_list_diversity, mmr, similarity_matrix

logger = logging.getLogger(__name__)


@dataclass
class Trace:
    """What each stage of one computation did (the admin preview shows it)."""

    consent: bool | None = None
    subject: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    diversity: float | None = None
    source: str = ""

    def add(self, stage: str, offered: int, kept: int, **extra: Any) -> None:
        """Record that ``stage`` offered ``offered`` candidates and ``kept`` of them went in."""
        self.stages.append({"stage": stage, "offered": offered, "kept": kept, **extra})


@dataclass(frozen=True)
class Pick:
    """One item the block holds, with the stage that picked it."""

    pk: int
    score: float
    strategy: str
    personalized: bool
    reason: Reason


class Block:
    """Collects a block stage by stage (see the module docstring)."""

    def __init__(
        self, index: CatalogIndex, allowed: np.ndarray, limit: int, diversity: float,
        trace: Trace | None = None,
    ) -> None:
        self.index = index
        self.allowed = allowed
        self.limit = limit
        self.diversity = diversity
        self.trace = trace
        self.picks: list[Pick] = []
        #: the last similarity matrix computed, and the pks of its rows
        self._similarity: tuple[list[int], np.ndarray] | None = None

    @property
    def pks(self) -> list[int]:
        """The items picked so far, in block order."""
        return [pick.pk for pick in self.picks]

    @property
    def need(self) -> int:
        """How many items the block still wants."""
        return self.limit - len(self.picks)

    def similarity(self, pks: list[int]) -> np.ndarray:
        """Pairwise similarity of ``pks``, from the last matrix when it covers them."""
        if self._similarity is not None:
            known, matrix = self._similarity
            where = {pk: n for n, pk in enumerate(known)}
            if all(pk in where for pk in pks):
                rows = np.asarray([where[pk] for pk in pks], dtype=np.int64)
                return matrix[np.ix_(rows, rows)]
        matrix = similarity_matrix(self.index, pks)
        self._similarity = (list(pks), matrix)
        return matrix

    def offer(
        self, stage: str, scored: Sequence[tuple[Any, float]], strategy: str,
        personalized: bool, explain: Explain,
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
        # first occurrence only: a block never repeats an item
        _, first = np.unique(ids, return_index=True)
        first.sort()
        ids, scores, rows = ids[first], scores[first], rows[first]
        if self.diversity > 0 and ids.size > 1:
            held = self.pks
            order = mmr(scores, self.similarity(held + ids.tolist()), self.diversity, self.need,
                        selected=range(len(held)))
        else:
            order = list(range(min(self.need, ids.size)))
        picked = ids[order].tolist()
        for i, pk, reason in zip(order, picked, explain(picked), strict=True):
            self.picks.append(Pick(pk, float(scores[i]), strategy, personalized, reason))
        self.allowed[rows[order]] = False
        if self.trace is not None:
            self.trace.add(stage, len(scored), len(order), strategy=strategy)

    def rows(self, generation: Any) -> tuple[list[Row], float | None]:
        """The picks as rows (one item query, cached per generation), and the list's diversity."""
        named = [pick.reason.item for pick in self.picks if pick.reason.item is not None]
        items = get_items([*self.pks, *named], generation)
        urls = known_urls(self.pks, generation)
        missing = {pk: items[pk] for pk in self.pks if pk in items and pk not in urls}
        if missing:
            found = item_urls(missing)
            remember_urls(found, generation)
            urls.update(found)
        rows = [
            Row(pick.pk, pick.score, pick.strategy, pick.personalized,
                pick.reason.text(items), urls.get(pick.pk), items[pick.pk].external_id,
                items[pick.pk].title, items[pick.pk].categories,
                item_attributes(items[pick.pk]))
            for pick in self.picks
            if pick.pk in items
        ]
        diversity = None
        if len(rows) >= 2:
            diversity = intra_list_diversity(self.similarity([row.pk for row in rows]))
        if self.trace is not None:
            self.trace.diversity = diversity
        return rows, diversity


def item_attributes(item: Item) -> dict[str, Any]:
    """A copy of the item's catalog attributes (``{}`` unless they are a JSON object)."""
    return dict(item.attributes) if isinstance(item.attributes, dict) else {}


def item_urls(items: dict[int, Item]) -> dict[int, str | None]:
    """Each item's page URL: its host object's ``get_absolute_url``, one query per host model.

    An item without a host object may carry its URL as ``attributes["url"]``.
    """
    urls: dict[int, str | None] = {}
    by_type: dict[int, dict[str, int]] = {}
    for pk, item in items.items():
        url = item.attributes.get("url") if isinstance(item.attributes, dict) else None
        urls[pk] = str(url) if url else None
        if item.content_type_id and item.object_id:
            by_type.setdefault(item.content_type_id, {})[item.object_id] = pk
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
            try:
                urls[found] = host.get_absolute_url()
            except Exception:
                logger.warning("get_absolute_url() failed for %r", host, exc_info=True)
    return urls
