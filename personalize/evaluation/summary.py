"""Assemble the evaluation report from the runs of each strategy on each split.

The runner measures; this module turns its runs into the report's entries:
the fold mean of every figure, the breakdown by training-history length, the
bootstrap intervals and the ties with the best strategy, and the per-reason
counts of the subjects a protocol dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from personalize.evaluation import metrics, uncertainty
from personalize.evaluation.splits import Split

#: The metric the report ranks strategies by (and marks ties on).
PRIMARY_METRIC = "ndcg"


def metric_keys(k: int) -> list[str]:
    """The metric names of a result entry, in report order."""
    return [
        *(f"{name}@{k}" for name in metrics.RANKING_METRICS),
        f"coverage@{k}", f"diversity@{k}", f"novelty@{k}", "rmse", "mae",
    ]


def clean(value: Any) -> Any:
    """NaN becomes None (JSON has no NaN); numpy scalars become Python numbers."""
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def combine(name: str, runs: list[dict[str, Any]], k: int, folds: int | None) -> dict[str, Any]:
    """One result entry: the fold mean of every figure (or the skip reason)."""
    entry: dict[str, Any] = {"strategy": name}
    for reason in ("failed", "skipped"):
        given = [run[reason] for run in runs if reason in run]
        if given:
            entry.update(dict.fromkeys(metric_keys(k)))
            entry[reason] = given[0]
            return entry
    for key in runs[0]:
        values = [run[key] for run in runs]
        if key in ("subjects", "cannot_recommend", "fallback"):
            entry[key] = round(float(np.mean(values)))
        else:
            finite = [v for v in values if not math.isnan(v)]
            entry[key] = clean(float(np.mean(finite))) if finite else None
    if folds is not None:
        entry["folds"] = folds
    return entry


def mean_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    """Per-reason counts averaged over folds (one split: the counts themselves)."""
    reasons = dict.fromkeys(reason for split in counts for reason in split)
    return {reason: round(sum(c.get(reason, 0) for c in counts) / len(counts))
            for reason in reasons}


#: What to try when a protocol leaves nothing to evaluate.
HINTS = {
    "stratified": "Each subject needs at least 2 items (one to train on, one to hold out); "
                  "try a lower --ratio (say 0.5) or a dataset with longer histories.",
    "temporal": "Move the cut with --ratio, or try --protocol stratified.",
    "leave-last-n": "Try a smaller --n, or --protocol stratified.",
    "kfold": "Try fewer --folds, or --protocol stratified.",
}


def nothing_message(protocol: str, splits: Sequence[Split]) -> str:
    dropped = mean_counts([split.dropped for split in splits])
    reasons = ", ".join(f"{count} {reason}" for reason, count in dropped.items())
    why = (f"all {sum(dropped.values())} subjects were dropped ({reasons})" if dropped
           else "the dataset has no subject")
    return (f"Nothing to evaluate: under the {protocol} protocol no subject has a held-out "
            f"item to rank for; {why}. {HINTS.get(protocol, '')}").strip()


def add_intervals(results: list[dict[str, Any]],
                   per_subject: dict[str, list[dict[str, np.ndarray] | None]],
                   k: int, resamples: int, seed: int) -> None:
    """Bootstrap intervals of the ranking metrics, and ties with the best on NDCG.

    One set of resamples per split, shared by every strategy (so differences
    are paired); a k-fold figure's resamples are the mean over folds.
    """
    scored = [entry for entry in results if "failed" not in entry and "skipped" not in entry]
    if not scored:
        return
    names = list(metrics.RANKING_METRICS)
    n_splits = len(per_subject[scored[0]["strategy"]])
    total = np.zeros((len(scored) * len(names), resamples))
    for fold in range(n_splits):
        stacked = np.stack([per_subject[entry["strategy"]][fold][m]  # type: ignore[index]
                            for entry in scored for m in names])
        total += uncertainty.resampled_means(stacked, resamples, seed + fold)
    samples = (total / n_splits).reshape(len(scored), len(names), resamples)
    bounds = uncertainty.interval(samples)
    for entry, rows in zip(scored, bounds, strict=True):
        entry["ci"] = {f"{m}@{k}": [clean(low), clean(high)]
                       for m, (low, high) in zip(names, rows, strict=True)}
    primary = samples[:, names.index(PRIMARY_METRIC)]
    points = np.array([entry[f"{PRIMARY_METRIC}@{k}"] for entry in scored], dtype=np.float64)
    if np.all(np.isnan(points)):
        return
    best = int(np.nanargmax(points))
    tied = uncertainty.tied_with(primary, best)
    for index, entry in enumerate(scored):
        entry["best"] = index == best
        entry["tied_with_best"] = bool(tied[index]) and index != best
