"""Rights of the data subject: export everything held about a subject, and erase it.

What counts as "held about a subject" is found generically: every model (this
app's or another installed app's) with a foreign key or one-to-one field to
:class:`~personalize.models.Subject` is walked through ``_meta``, so a table
added later (experiment exposures, say) is exported and erased without
changing this module. Subjects merged into the subject (an anonymous visitor
who later signed in) belong to it and are included.

Outside the database:

* cache entries: every per-subject key carries ``subject:<pk>`` (see
  :mod:`personalize.consent.cache`) and is deleted; cached values are exported;
* trained artifacts: the subject's vector may sit in a loaded model until the
  next training. :func:`erase_subject` sends
  ``personalize.signals.subject_erased(subject_id=..., key=..., reason="erasure")``
  after the transaction commits; the serving and training code listen to it,
  drop cached blocks and mark the subject's row in loaded artifacts as erased
  so its vector is never used again, and the next training no longer sees the
  subject's events. Receivers must accept ``**kwargs``.
* derived profiles kept by other code: receivers of :data:`export_profile`
  return a dict that is merged into the export's ``profile`` section.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.dispatch import Signal
from django.utils import timezone

from personalize.backends.cache import list_keys, personalize_cache
from personalize.backends.database import store_for
from personalize.conf import personalize_settings
from personalize.consent.cache import delete_subject_keys, subject_key_patterns
from personalize.consent.service import get_consent
from personalize.models import ConsentRecord, Event, Item, Subject
from personalize.models.events import HISTORY_LIMIT
from personalize.signals import subject_erased

logger = logging.getLogger(__name__)

#: Version of the export document layout.
EXPORT_FORMAT_VERSION = 1

#: Sent by :func:`export_subject` with ``subject`` (the Subject) and
#: ``subject_ids`` (it and the subjects merged into it). A receiver returns a
#: JSON-serialisable dict, merged into ``export["profile"]`` (for example
#: ``{"embedding_model": {"has_vector": True, "version": 3}}``), or ``None``.
export_profile = Signal()

#: How many recent items the export's history summary lists.
RECENT_ITEMS = 20



@dataclass
class ErasureReport:
    """What :func:`erase_subject` removed.

    Attributes:
        subject_id: the pk the erased subject had.
        key: the pseudonymous key it had.
        kind: ``"user"`` or ``"visitor"``.
        subject_ids: it and every subject merged into it (all erased).
        deleted: rows deleted per model label (``personalize.Event``, ...),
            including the ``personalize.Subject`` rows themselves.
        cache_keys: cache keys deleted.
    """

    subject_id: int
    key: str
    kind: str
    subject_ids: list[int] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)
    cache_keys: int = 0

    @property
    def rows(self) -> int:
        """Total database rows deleted."""
        return sum(self.deleted.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "subject": self.key,
            "kind": self.kind,
            "subjects": len(self.subject_ids),
            "deleted": dict(self.deleted),
            "rows": self.rows,
            "cache_keys": self.cache_keys,
        }

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {label}" for label, n in sorted(self.deleted.items()) if n)
        return (
            f"Erased {self.kind} subject {self.key}: {parts or 'no rows'}; "
            f"{self.cache_keys} cache key(s)."
        )


# --- finding what references a subject ---------------------------------------------


def subject_relations() -> list[tuple[type[models.Model], str]]:
    """Every ``(model, field name)`` whose concrete foreign key points at Subject.

    Includes auto-created many-to-many tables; the Subject model's own
    ``merged_into`` link is included too.
    """
    found: list[tuple[type[models.Model], str]] = []
    for model in apps.get_models(include_auto_created=True):
        for f in model._meta.get_fields():
            if (
                f.concrete
                and (f.many_to_one or f.one_to_one)
                and f.related_model is Subject
            ):
                found.append((model, f.name))
    return found


def subject_tree(subject: Subject) -> list[Subject]:
    """The subject and every subject merged into it (transitively), the subject first."""
    tree = [subject]
    frontier = [subject.pk]
    seen = {subject.pk}
    while frontier:
        children = [
            s for s in Subject.objects.filter(merged_into_id__in=frontier) if s.pk not in seen
        ]
        seen.update(s.pk for s in children)
        tree.extend(children)
        frontier = [s.pk for s in children]
    return tree


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=repr))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --- export ----------------------------------------------------------------------------


def _subject_dict(subject: Subject) -> dict[str, Any]:
    return {
        "key": subject.key,
        "kind": subject.kind,
        "user_id": subject.user_id,
        "visitor_id": subject.visitor_id,
        "created_at": _iso(subject.created_at),
        "last_seen_at": _iso(subject.last_seen_at),
    }


def _events(subject_ids: list[int]) -> list[dict[str, Any]]:
    rows = (
        Event.objects.filter(subject_id__in=subject_ids)
        .order_by("timestamp", "id")
        .values_list(
            "event_id", "event_type", "item__external_id", "item__title", "value", "context",
            "timestamp", "source", "received_at",
        )
    )
    return [
        {
            "event_id": str(event_id),
            "event_type": event_type,
            "item": external_id,
            "item_title": title,
            "value": value,
            "context": context,
            "timestamp": _iso(ts),
            "source": source,
            "received_at": _iso(received),
        }
        for event_id, event_type, external_id, title, value, context, ts, source, received in rows
    ]


def _ledger(subject_ids: list[int]) -> list[dict[str, Any]]:
    rows = (
        ConsentRecord.objects.filter(subject_id__in=subject_ids)
        .order_by("created_at", "id")
        .values_list("purpose", "granted", "policy_version", "source", "created_at")
    )
    return [
        {"purpose": p, "granted": g, "policy_version": v, "source": s, "created_at": _iso(t)}
        for p, g, v, s, t in rows
    ]


def history_summary(subject: Subject, events: list[dict[str, Any]]) -> dict[str, Any]:
    """What recommenders read about the subject: counts, categories, the recent history.

    ``events`` are the subject's exported events, oldest first.
    """
    weights = personalize_settings.event_weights
    # the events a strategy reads: an item and a type that carries a preference
    preference = [e for e in events
                  if e["item"] is not None and weights.get(e["event_type"], 0) != 0]
    categories = Counter(
        Item.objects.filter(events__subject_id=subject.pk)
        .exclude(primary_category="")
        .values_list("primary_category", flat=True)
    )
    return {
        "events": len(events),
        "by_type": dict(Counter(e["event_type"] for e in events)),
        "distinct_items": len({e["item"] for e in events if e["item"] is not None}),
        "first_event": events[0]["timestamp"] if events else None,
        "last_event": events[-1]["timestamp"] if events else None,
        "top_categories": [name for name, _ in categories.most_common(10)],
        "recent_items": list(dict.fromkeys(e["item"] for e in reversed(preference)))[
            :RECENT_ITEMS],
        "preference_weight": float(sum(_weight(weights[e["event_type"]])
                                       for e in preference[-HISTORY_LIMIT:])),
    }


def _weight(weight: float | None) -> float:
    # an explicit rating (weight None) counts as one interaction, as in training
    return 1.0 if weight is None else float(weight)


def _cached_entries(tree: list[Subject]) -> dict[str, Any]:
    """Cache entries that reference the subjects (only where the backend can list keys)."""
    patterns = [p for s in tree for p in subject_key_patterns(s.pk, s.key)]
    try:
        cache = personalize_cache()
        keys = list_keys(patterns, cache)
        if not keys:
            return {}
        return {key: _json_safe(value) for key, value in cache.get_many(keys).items()}
    except Exception:
        logger.warning("Could not read cached entries for the export", exc_info=True)
        return {}


def _other_rows(subject_ids: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Rows of other apps' models that reference the subjects."""
    skip = {Subject, Event, ConsentRecord}
    out: dict[str, list[dict[str, Any]]] = {}
    for model, name in subject_relations():
        if model in skip:
            continue
        rows = list(model._default_manager.filter(**{f"{name}__in": subject_ids}).values())
        if rows:
            out.setdefault(model._meta.label, []).extend(_json_safe(rows))
    return out


def export_subject(subject: Subject) -> dict[str, Any]:
    """Everything held about a subject, as JSON-serialisable data.

    Args:
        subject: the subject (subjects merged into it are included).

    Returns:
        A dict with ``format``, ``format_version``, ``exported_at``,
        ``subject`` (key, kind, user id, visitor id, created, last seen),
        ``merged_subjects``, ``consent`` (``current`` state per purpose and the
        full ``ledger``), ``events`` (oldest first, items by external id),
        ``profile`` (``history`` summary, ``cached`` entries, plus what
        :data:`export_profile` receivers add) and ``other`` (rows of any other
        model that references the subject, by model label).
    """
    tree = subject_tree(subject)
    ids = [s.pk for s in tree]
    events = _events(ids)
    profile: dict[str, Any] = {
        "history": history_summary(subject, events),
        "cached": _cached_entries(tree),
    }
    for receiver, response in export_profile.send_robust(
        sender=Subject, subject=subject, subject_ids=ids
    ):
        if isinstance(response, Exception):
            logger.error("export_profile receiver %r failed", receiver, exc_info=response)
        elif response:
            profile.update(_json_safe(response))
    return {
        "format": "django-personalize subject export",
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "subject": _subject_dict(subject),
        "merged_subjects": [_subject_dict(s) for s in tree[1:]],
        "consent": {
            "current": {p: state.as_dict() for p, state in get_consent(subject).items()},
            "ledger": _ledger(ids),
        },
        "events": events,
        "profile": profile,
        "other": _other_rows(ids),
    }


def empty_export() -> dict[str, Any]:
    """The export of a visitor about whom nothing is held (no subject)."""
    return {
        "format": "django-personalize subject export",
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
        "subject": None,
        "merged_subjects": [],
        "consent": {
            "current": {p: state.as_dict() for p, state in get_consent(None).items()},
            "ledger": [],
        },
        "events": [],
        "profile": {},
        "other": {},
    }


# --- erasure ----------------------------------------------------------------------------


def erase_subject(subject: Subject) -> ErasureReport:
    """Erase a subject: rows in every table that references it, cache entries, the row itself.

    Removes the subject's events, consent ledger, rows of any other model with
    a foreign key to it, the Subject row and those merged into it, and every
    cache key that references them. After the transaction commits, sends
    ``subject_erased(subject_id=..., key=..., reason="erasure")`` once per
    erased subject so serving and loaded artifacts forget it (see the module
    docstring). A signed-in user's account is not touched: the next request
    of that user starts a new subject with a new key.

    Args:
        subject: the subject to erase.

    Returns:
        An :class:`ErasureReport`.
    """
    alias = router.db_for_write(Subject)
    with transaction.atomic(using=alias):
        tree = subject_tree(subject)
        ids = [s.pk for s in tree]
        # Writers of events hold these rows shared: erasure waits for their
        # commit (and deletes what they wrote); later writers find no subject.
        store_for(alias).lock_subjects(ids, exclusive=True)
        deleted: Counter[str] = Counter()
        for model, name in subject_relations():
            if model is Subject:
                continue  # the merge links go with the Subject rows below
            count, _ = model._default_manager.filter(**{f"{name}__in": ids}).delete()
            if count:
                deleted[model._meta.label] += count
        _, by_model = Subject.objects.filter(pk__in=ids).delete()
        for label, count in by_model.items():
            if count:
                deleted[label] += count
        cache_keys = sum(delete_subject_keys(s.pk, s.key) for s in tree)
        erased = [(s.pk, s.key) for s in tree]

        def _after_commit() -> None:
            for pk, key in erased:
                subject_erased.send(sender=Subject, subject_id=pk, key=key, reason="erasure")
                # Swept after the receivers ran (one may bump a per-subject key) and
                # after commit (a concurrent request may have re-cached state).
                delete_subject_keys(pk, key)

        transaction.on_commit(_after_commit)
    report = ErasureReport(
        subject_id=subject.pk, key=subject.key, kind=subject.kind, subject_ids=ids,
        deleted=dict(deleted), cache_keys=cache_keys,
    )
    logger.info("%s", report)
    return report


def erase_subjects(subjects: Iterable[Subject]) -> list[ErasureReport]:
    """Erase several subjects with :func:`erase_subject`, each once.

    A subject merged into another of the given subjects goes with that
    one's erasure (and is announced once); a subject erased meanwhile is
    skipped. Each erasure is its own transaction unless the caller holds one.

    Args:
        subjects: the subjects to erase.

    Returns:
        One :class:`ErasureReport` per erasure that ran (subjects that were not
        merged first, each group in primary key order).
    """
    chosen = sorted({s.pk: s for s in subjects}.values(), key=lambda s: s.pk)
    # Survivors first, so a merged subject is erased as part of its survivor's tree.
    chosen.sort(key=lambda s: s.merged_into_id is not None)
    reports: list[ErasureReport] = []
    erased: set[int] = set()
    for subject in chosen:
        if subject.pk in erased or not Subject.objects.filter(pk=subject.pk).exists():
            continue
        report = erase_subject(subject)
        erased.update(report.subject_ids)
        reports.append(report)
    return reports
