"""The recommendation block cache, with generation counters instead of key scans.

Every block is stored under a key naming its placement, its subject (or
``anon`` for the shared non-personalized block), the asked limit, the page's
item and the language. The entry carries the *generations* it was computed
under:

* the **global generation** (``personalize:rec:gen``), bumped when the catalog
  changes (``items_changed``, an Item saved or deleted), a model version is
  activated (``model_activated``) or a placement is edited;
* the **subject's generation** (``personalize:rec:gen:subject:<pk>``), bumped
  when the subject does something (``event_recorded``), changes a consent
  decision, or is erased (``subject_erased``);
* the active model version of the placement's strategy and the site's consent
  configuration.

A placement that runs an experiment keeps one entry per variant: the key ends
with ``:variant:<pk>``, and a subject reads the entry of the variant they are
assigned (:mod:`personalize.experiments.assignment`).

A lookup is a single ``get_many`` of the global generation, the subject's
generation and the entry (with the subject's cached consent state, which a
miss needs: :func:`read_with_consents`); the entry (a :class:`BlockEntry`)
counts only if everything it carries still matches, so invalidating a
subject's blocks is one ``set`` however many blocks they have, and nothing ever
scans keys. Generations are random tokens, not counters: an evicted counter
that restarted from zero could make an old entry look current again; a fresh
random token cannot. Entry keys carry :data:`ENTRY_FORMAT`, so a release that
changes what an entry holds never reads the entries of another.

Entries expire after the placement's ``cache_ttl``; stale entries are
overwritten in place (same key) or expire.

The cache is an accelerator: when it is unreachable, lookups and writes log a
warning (at most once every
:data:`~personalize.backends.cache.WARNING_INTERVAL` seconds per process) and
the pipeline computes the block directly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from personalize.backends.cache import (
    CacheBatch,
    personalize_cache,
    read_many,
    warn_unreachable,
)
from personalize.consent.service import (
    ANALYTICS,
    PERSONALIZATION,
    consents_reading,
)

PREFIX = "personalize:rec"
GLOBAL_GEN_KEY = f"{PREFIX}:gen"
#: Part of every entry key: bumped when what an entry holds changes.
ENTRY_FORMAT = 4
#: A subject's generation outlives any block of theirs (blocks expire sooner);
#: when it expires anyway, their entries stop matching, which is safe.
SUBJECT_GEN_TTL = 60 * 60 * 24 * 7

#: The generation when the cache could not be read: nothing cached per process
#: may be trusted without a time limit.
UNKNOWN: Any = type("UnknownGeneration", (), {"__repr__": lambda self: "UNKNOWN"})()


class Row(NamedTuple):
    """One item of a block, with what the REST API shows of it.

    ``external_id``, ``title``, ``categories`` and ``attributes`` (the catalog
    attributes the site maps: price, brand, image, ...) are copied from the
    item when the block is computed (the global generation moves when an item
    changes), so a cached block is rendered without loading items.
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
    attributes: dict[str, Any]


#: The model a block was computed with: ``(strategy name, version)``, or None.
ModelKey = tuple[str, int] | None


@dataclass(frozen=True)
class BlockEntry:
    """A cached recommendation block and the state it was computed under."""

    generation: Any
    subject_generation: Any
    model: ModelKey
    #: the site's consent configuration (what counts as consent)
    consent: tuple[Any, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class SimilarEntry:
    """A cached "similar items" block and the state it was computed under."""

    generation: Any
    model: ModelKey
    rows: tuple[Row, ...]


def new_token() -> str:
    """A fresh random generation token."""
    return os.urandom(6).hex()


def subject_gen_key(subject_id: int) -> str:
    """The generation key of one subject (carries ``subject:<pk>`` for erasure scans)."""
    return f"{PREFIX}:gen:subject:{int(subject_id)}"


def block_key(
    placement: str,
    subject_id: int | None,
    limit: int | None,
    context_item: int | None,
    language: str | None,
    variant: int | None = None,
) -> str:
    """Where one recommendation block is cached.

    Args:
        placement: the placement name.
        subject_id: the subject's pk, or ``None`` for the shared non-personalized block.
        limit: the limit asked for (``None``: the placement's).
        context_item: the pk of the page's item, if any.
        language: the active language (explanations are translated).
        variant: the pk of the experiment variant the block serves, if the
            placement runs an experiment (each variant's block is its own entry).
    """
    who = "anon" if subject_id is None else f"subject:{int(subject_id)}"
    key = (
        f"{PREFIX}:v{ENTRY_FORMAT}:{who}:{placement}:{'d' if limit is None else int(limit)}:"
        f"{'-' if context_item is None else int(context_item)}:{language or '-'}"
    )
    return key if variant is None else f"{key}:variant:{int(variant)}"


def similar_key(
    item_id: int, strategy: str, placement: str | None, limit: int, language: str | None
) -> str:
    """Where one "similar items" block is cached (shared by every visitor)."""
    return (
        f"{PREFIX}:v{ENTRY_FORMAT}:similar:{int(item_id)}:{strategy}:{placement or '-'}:"
        f"{int(limit)}:{language or '-'}"
    )


def read(keys: list[str]) -> dict[str, Any] | None:
    """One ``get_many`` round trip; ``None`` when the cache is unreachable."""
    return read_many(keys, "computing recommendations directly")


def read_with_consents(
    subject_id: int, keys: list[str]
) -> tuple[bool, bool, dict[str, Any] | None]:
    """:func:`read` plus the subject's ``personalization`` and ``analytics`` consent.

    A block computed on a miss needs the ``personalization`` consent, and every
    block its ``analytics`` consent (the exposure, the experiment); reading the
    cached ledger state (see :func:`personalize.consent.service.consents_reading`)
    in the same ``get_many`` saves a round trip. The caller has already served a
    request with a GPC / DNT signal the shared non-personalized block, so no
    request is consulted here.

    Args:
        subject_id: a live subject's pk.
        keys: the keys to read.

    Returns:
        ``(personalization, analytics, values)``; ``values`` is ``None`` when
        the cache is unreachable (the consent then came from the ledger).
    """
    granted, values = consents_reading(subject_id, (PERSONALIZATION, ANALYTICS), None, keys)
    if values is None:
        warn_unreachable("computing recommendations directly")
    return granted[PERSONALIZATION], granted[ANALYTICS], values


def write(key: str, value: Any, ttl: int) -> None:
    """Store an entry; a failure is logged and otherwise ignored."""
    if ttl <= 0:
        return
    try:
        personalize_cache().set(key, value, timeout=ttl)
    except Exception as exc:
        warn_unreachable("not caching recommendations", exc)


def global_generation(values: dict[str, Any] | None) -> Any:
    """The global generation from a :func:`read` result, initialised when missing.

    A missing counter (a flushed or new cache) gets a fresh token with ``add``
    so that every process agrees on one value; ``UNKNOWN`` when the cache is
    unreachable.
    """
    if values is None:
        return UNKNOWN
    generation = values.get(GLOBAL_GEN_KEY)
    if generation is not None:
        return generation
    token = new_token()
    try:
        cache = personalize_cache()
        if cache.add(GLOBAL_GEN_KEY, token, timeout=None):
            return token
        return cache.get(GLOBAL_GEN_KEY) or UNKNOWN
    except Exception as exc:
        warn_unreachable("computing recommendations directly", exc)
        return UNKNOWN


def bump_global() -> None:
    """Invalidate every cached block (catalog, model or placement change)."""
    try:
        personalize_cache().set(GLOBAL_GEN_KEY, new_token(), timeout=None)
    except Exception as exc:
        warn_unreachable("cached blocks expire by their TTL instead", exc)


def bump_subjects(subject_ids: Iterable[int], batch: CacheBatch | None = None) -> None:
    """Invalidate every cached block of these subjects (one ``set_many``).

    Args:
        subject_ids: Subject pks.
        batch: queue the write there instead of sending it now (the
            ``event_recorded`` path sends all its writes in one round trip).
    """
    ids = {int(s) for s in subject_ids if s is not None}
    if not ids:
        return
    token = new_token()
    generations = {subject_gen_key(s): token for s in ids}
    if batch is not None:
        batch.set_many(generations, timeout=SUBJECT_GEN_TTL)
        return
    try:
        personalize_cache().set_many(generations, timeout=SUBJECT_GEN_TTL)
    except Exception as exc:
        warn_unreachable("cached blocks expire by their TTL instead", exc)
