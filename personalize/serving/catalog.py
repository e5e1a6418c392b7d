"""The catalog as serving sees it: NumPy arrays over every Item, and a row cache.

Business filters, "popular in <category>" and category-based diversity work on
whole-catalog boolean masks instead of per-item Python loops. The arrays are
built with one query and kept per process until the serving generation changes
(a catalog change, a model activation or a placement edit bumps it; see
:mod:`personalize.serving.cache`).

Item rows that end up in a block are kept in a bounded per-process cache with
the same generation, so a cached block is materialised without a query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from personalize.conf import personalize_settings
from personalize.models import Item
from personalize.serving.cache import UNKNOWN
from personalize.strategies.common import sorted_positions

#: Marks "loaded before any generation was seen": stale at the first real read.
STALE: Any = type("StaleGeneration", (), {"__repr__": lambda self: "STALE"})()
#: Passed as ``generation`` to accept whatever is loaded.
ANY: Any = type("AnyGeneration", (), {"__repr__": lambda self: "ANY"})()
#: With the cache unreachable, an index this old (seconds) is rebuilt anyway.
UNKNOWN_MAX_AGE = 60.0


@dataclass
class CatalogIndex:
    """Every item's id, availability and categories, as aligned arrays.

    Attributes:
        pks: ``Item.pk`` of every item, sorted ascending.
        available: whether each item may be shown.
        membership: ``(n_items, n_categories)`` CSR, 1.0 where an item is in a category.
        category_names: the category of each membership column.
        primary: the column of each item's primary category, ``-1`` for none.
        external_ids: external id -> pk.
        host_keys: ``(content_type_id, object_id)`` -> pk, for host catalog objects.
        memo: what serving derives from the index (a placement's filter mask, ...),
            kept as long as the index is.
    """

    pks: np.ndarray
    available: np.ndarray
    membership: sp.csr_array
    category_names: list[str]
    primary: np.ndarray
    external_ids: dict[str, int]
    host_keys: dict[tuple[int, str], int]
    generation: Any = STALE
    built_at: float = field(default_factory=time.monotonic)
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    _category_pos: dict[str, int] = field(default_factory=dict, repr=False)
    _norm_rows: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._category_pos = {name: n for n, name in enumerate(self.category_names)}

    def __len__(self) -> int:
        return len(self.pks)

    def positions(self, pks: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``pks`` in the index.

        Returns:
            ``(rows, found)``: the row of every known pk (unknown ones left out)
            and a bool mask over ``pks``.
        """
        query = np.asarray(list(pks) if not isinstance(pks, np.ndarray) else pks)
        if query.size == 0 or len(self.pks) == 0:
            return np.empty(0, dtype=np.int64), np.zeros(query.size, dtype=bool)
        try:
            query = query.astype(np.int64, copy=False)
        except (TypeError, ValueError):
            # ids of another type (a strategy trained on file ids) match nothing here
            return np.empty(0, dtype=np.int64), np.zeros(query.size, dtype=bool)
        return sorted_positions(self.pks, query)

    def category_column(self, name: str) -> int | None:
        return self._category_pos.get(name)

    def in_categories(self, names: Iterable[str]) -> np.ndarray:
        """Bool mask of the items in any of ``names`` (unknown names match nothing)."""
        columns = [c for c in (self._category_pos.get(n) for n in names) if c is not None]
        if not columns or len(self.pks) == 0:
            return np.zeros(len(self.pks), dtype=bool)
        return np.asarray(self.membership[:, columns].sum(axis=1)).ravel() > 0

    def _entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Membership entries of ``rows``: their positions in the CSR arrays, and which row each is.

        NumPy over ``indptr`` instead of scipy row slicing, whose fixed cost is
        many times that of the few entries a block's items have.
        """
        starts = self.membership.indptr[rows]
        lengths = self.membership.indptr[rows + 1] - starts
        owner = np.repeat(np.arange(len(rows)), lengths)
        # position = the row's start + the entry's offset within the row
        offsets = np.arange(owner.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.repeat(starts, lengths) + offsets, owner

    def category_similarity(self, rows: np.ndarray) -> np.ndarray:
        """Cosine similarity of the category memberships of ``rows`` (0 for uncategorised items)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._norm_rows is None:
            counts = np.diff(self.membership.indptr).astype(np.float64)
            self._norm_rows = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
        positions, owner = self._entries(rows)
        # dense over only the categories these rows use: a handful, whatever the catalog has
        used, column = np.unique(self.membership.indices[positions], return_inverse=True)
        vectors = np.zeros((len(rows), used.size))
        vectors[owner, column] = self.membership.data[positions] * self._norm_rows[rows][owner]
        return vectors @ vectors.T

    def preferred_category(self, pks: Sequence[Any], weights: Sequence[float] | None) -> str | None:
        """The category a history engages with most (weights summed), if any."""
        rows, found = self.positions(pks)
        if rows.size == 0 or not self.category_names:
            return None
        w = np.ones(len(found)) if weights is None else np.asarray(weights, dtype=np.float64)
        w = np.clip(w[found], 0.0, None)
        positions, owner = self._entries(rows)
        totals = np.bincount(self.membership.indices[positions],
                             weights=w[owner] * self.membership.data[positions],
                             minlength=len(self.category_names))
        if totals.max() <= 0:
            return None
        return self.category_names[int(np.argmax(totals))]


def build_index() -> CatalogIndex:
    """Read every item with one query and build the arrays."""
    rows = list(
        Item.objects.order_by("pk").values_list(
            "pk", "external_id", "categories", "available", "content_type_id", "object_id"
        )
    )
    n = len(rows)
    pks = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    available = np.fromiter((bool(r[3]) for r in rows), dtype=bool, count=n)
    item_categories = [
        [str(c) for c in dict.fromkeys(r[2])] if isinstance(r[2], list) else [] for r in rows
    ]
    names = sorted({c for cats in item_categories for c in cats})
    column = {name: i for i, name in enumerate(names)}
    lengths = np.fromiter((len(c) for c in item_categories), dtype=np.int64, count=n)
    row_idx = np.repeat(np.arange(n, dtype=np.int64), lengths)
    col_idx = np.fromiter(
        (column[c] for cats in item_categories for c in cats), dtype=np.int64, count=len(row_idx)
    )
    membership = sp.csr_array(
        (np.ones(len(row_idx), dtype=np.float32), (row_idx, col_idx)), shape=(n, len(names))
    )
    primary = np.full(n, -1, dtype=np.int64)
    has = lengths > 0
    if has.any():
        # the first category of each item is its primary one
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        primary[has] = col_idx[starts[has]]
    return CatalogIndex(
        pks=pks,
        available=available,
        membership=membership,
        category_names=names,
        primary=primary,
        external_ids={r[1]: r[0] for r in rows},
        host_keys={(r[4], str(r[5])): r[0] for r in rows if r[4] is not None},
    )


_lock = threading.Lock()
_index: CatalogIndex | None = None
_items: dict[int, Item] = {}
_items_generation: Any = STALE
_urls: dict[int, str | None] = {}


def _usable(index: CatalogIndex | None, generation: Any) -> bool:
    if index is None:
        return False
    if generation is ANY:
        return True
    if generation is UNKNOWN:
        return time.monotonic() - index.built_at < UNKNOWN_MAX_AGE
    return bool(index.generation == generation)


def catalog_index(generation: Any = ANY) -> CatalogIndex:
    """The per-process catalog index, rebuilt when ``generation`` differs from its own.

    Args:
        generation: the serving generation just read from the cache, ``ANY``
            to accept whatever is loaded (before the generation is known), or
            ``UNKNOWN`` (cache unreachable: rebuilt when older than a minute).
    """
    global _index
    if _usable(_index, generation):
        return _index  # type: ignore[return-value]
    with _lock:
        if _usable(_index, generation):
            return _index  # type: ignore[return-value]
        index = build_index()
        index.generation = STALE if generation in (ANY, UNKNOWN) else generation
        _index = index
    return index


def get_items(pks: Iterable[int], generation: Any) -> dict[int, Item]:
    """Item rows by pk, in the order asked: cached in this process, the missing ones in one query.

    The cache is dropped when ``generation`` changes and when it outgrows
    ``SERVING_ITEM_CACHE_SIZE`` rows. ``UNKNOWN`` (the cache is unreachable)
    bypasses it.
    """
    global _items, _items_generation
    wanted = list(dict.fromkeys(pks))
    if generation is UNKNOWN or generation is ANY or generation is STALE:
        fetched = Item.objects.in_bulk(wanted)
        return {pk: fetched[pk] for pk in wanted if pk in fetched}
    if generation != _items_generation:
        _items = {}
        _urls.clear()
        _items_generation = generation
    found = {pk: _items[pk] for pk in wanted if pk in _items}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        fetched = Item.objects.in_bulk(missing)
        found.update(fetched)
        limit = int(personalize_settings.SERVING_ITEM_CACHE_SIZE)
        if len(_items) + len(fetched) > limit:
            _items = {}
        if limit > 0:
            _items.update(fetched)
    return {pk: found[pk] for pk in wanted if pk in found}


def known_urls(pks: Iterable[int], generation: Any) -> dict[int, str | None]:
    """The page URLs remembered for ``pks`` under ``generation`` (call after :func:`get_items`)."""
    if generation != _items_generation or generation in (UNKNOWN, ANY, STALE):
        return {}
    return {pk: _urls[pk] for pk in pks if pk in _urls}


def remember_urls(urls: dict[int, str | None], generation: Any) -> None:
    """Keep page URLs until the generation moves (host objects change only with their Item)."""
    if generation == _items_generation and generation not in (UNKNOWN, ANY, STALE):
        if len(_urls) + len(urls) > int(personalize_settings.SERVING_ITEM_CACHE_SIZE):
            _urls.clear()
        _urls.update(urls)


def clear() -> None:
    """Forget the index and the item rows of this process (tests use it)."""
    global _index, _items, _items_generation
    with _lock:
        _index = None
        _items = {}
        _urls.clear()
        _items_generation = STALE
