"""Experiments for tests: a running experiment with its variants in one call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from personalize.consent.service import grant_consent
from personalize.models import Experiment, Subject, SubjectOutcome, Variant


def make_experiment(
    placement: str = "home",
    variants: list[dict[str, Any]] | None = None,
    *,
    name: str | None = None,
    status: str = Experiment.Status.RUNNING,
    **fields: Any,
) -> Experiment:
    """An experiment with variants (default: control ``a`` on item_knn vs ``b`` on ease, 50/50).

    Each variant is a dict of :class:`~personalize.models.Variant` fields; the
    first is the control unless one says ``is_control``.
    """
    variants = variants if variants is not None else [
        {"key": "a", "strategy": "item_knn"}, {"key": "b", "strategy": "ease"}]
    experiment = Experiment.objects.create(
        name=name or f"{placement} test {Experiment.objects.count() + 1}", placement=placement,
        status=status, **fields)
    has_control = any(v.get("is_control") for v in variants)
    for n, spec in enumerate(variants):
        Variant.objects.create(experiment=experiment, **{
            "is_control": not has_control and n == 0, **spec})
    return experiment


def grant_analytics(subject: Subject) -> None:
    """Record an ``analytics`` grant (exposures, experiments) for ``subject``."""
    grant_consent(subject, "analytics")


def variant(experiment: Experiment, key: str) -> Variant:
    return experiment.variants.get(key=key)


def add_outcomes(experiment: Experiment, key: str, rows: list[tuple[int, int, float]], *,
                 start: datetime, step: timedelta = timedelta(minutes=1)) -> None:
    """One subject per ``(clicks, conversions, revenue)`` in variant ``key``, ``step`` apart.

    What the rollup would have written for subjects first exposed from ``start`` on.
    """
    variant = Variant.objects.get(experiment=experiment, key=key)
    subjects = Subject.objects.bulk_create([Subject() for _ in rows])
    if not subjects[0].pk:  # backends without RETURNING on bulk_create
        subjects = list(Subject.objects.order_by("-pk")[: len(rows)])[::-1]
    SubjectOutcome.objects.bulk_create([
        SubjectOutcome(experiment=experiment, variant=variant, subject=subject,
                       first_exposed_at=start + n * step, exposures=1, clicks=clicks,
                       conversions=conversions, revenue=revenue)
        for n, (subject, (clicks, conversions, revenue)) in enumerate(zip(subjects, rows,
                                                                           strict=True))
    ])
