"""Precomputed top-N lists for recently active subjects, kept in the shared cache.

A batch job (``personalize.serving.tasks.precompute_top_n``) splits the active
subjects into chunks that any number of workers score in parallel. Each list is
stored under ``personalize:topn:<strategy>:subject:<pk>`` with the model
version it came from and the subject's block generation
(:mod:`personalize.serving.cache`) when it was computed. :func:`get_precomputed`
returns it only while that version is still live and the generation has not
moved: a new event, a consent decision or an erasure moves it, so a stored list
is never staler than the subject's own history, and recording an event costs
no extra cache write for it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

from personalize.backends.cache import personalize_cache
from personalize.conf import personalize_settings
from personalize.consent.cache import subject_cache_token
from personalize.models import Event
from personalize.serving import cache as block_cache
from personalize.serving import loader
from personalize.strategies import CannotRecommend, Scored
from personalize.tracking.history import subject_history

logger = logging.getLogger(__name__)

PREFIX = "personalize:topn:"


def topn_key(name: str, subject_id: Any) -> str:
    """Where a subject's list is stored; it carries ``subject:<pk>`` so erasure finds it."""
    return f"{PREFIX}{name}:{subject_cache_token(subject_id)}"


def active_subject_ids(days: int) -> list[int]:
    """Subjects with an event in the last ``days`` days, in primary-key order."""
    since = timezone.now() - timedelta(days=days)
    # order_by() replaces Event's default ordering, which would defeat DISTINCT
    return list(
        Event.objects.filter(timestamp__gte=since).order_by("subject_id")
        .values_list("subject_id", flat=True).distinct()
    )


def _generations(subject_ids: list[int]) -> dict[int, Any]:
    """The subjects' current block generations, created where missing (one read, few adds)."""
    cache = personalize_cache()
    keys = {subject_id: block_cache.subject_gen_key(subject_id) for subject_id in subject_ids}
    found = cache.get_many(list(keys.values()))
    generations = {}
    for subject_id, key in keys.items():
        generation = found.get(key)
        if generation is None:
            # A token now, so that the subject's next event (which replaces it) is noticed.
            token = block_cache.new_token()
            generation = token if cache.add(key, token, timeout=block_cache.SUBJECT_GEN_TTL) \
                else cache.get(key)
        generations[subject_id] = generation
    return generations


def precompute(name: str, subject_ids: list[int], k: int) -> int:
    """Score ``subject_ids`` with the live model of ``name`` and store their top ``k``.

    Returns:
        How many lists were stored (subjects the model cannot answer for are skipped).
    """
    live = loader.get_active_model(name)
    if live is None:
        return 0
    # Generations first, histories second: an event in between moves the
    # generation, so a list computed from the older history is never served.
    generations = _generations(subject_ids)
    stored: dict[str, Any] = {}
    for subject_id in subject_ids:
        generation = generations[subject_id]
        if generation is None:
            continue
        history = subject_history(subject_id)
        try:
            scored = live.strategy.recommend(live.artifact, history, k)
        except CannotRecommend:
            continue
        stored[topn_key(name, subject_id)] = {
            "version": live.version,
            "generation": generation,
            "items": [(item, float(score)) for item, score in scored],
        }
    personalize_cache().set_many(stored, timeout=int(personalize_settings.PRECOMPUTE_TTL))
    return len(stored)


def get_precomputed(name: str, subject_id: Any) -> Scored | None:
    """The stored top-N of a subject; ``None`` if absent, outdated or from a retired version."""
    key = topn_key(name, subject_id)
    try:
        found = personalize_cache().get_many([key, block_cache.subject_gen_key(subject_id)])
    except Exception:
        return None
    value = found.get(key)
    if not value or value.get("generation") != found.get(block_cache.subject_gen_key(subject_id)):
        return None
    live = loader.get_active_model(name)
    if live is None or value.get("version") != live.version:
        return None
    return [(item, score) for item, score in value["items"]]
