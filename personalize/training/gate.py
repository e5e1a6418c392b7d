"""The quality gate: hold out the newest events, and judge a candidate against the live version.

Why the activated model is the one fitted on the training part, not a refit on
all data: the gate compares the candidate with the live version on the same
held-out events, and only a model that has not seen them can be judged on
them. The live version was itself fitted on data before *its* cut, and cuts
only move forward, so neither model has seen the current holdout and the
comparison is fair. What the served model misses is the newest
``HOLDOUT_FRACTION`` of events in its weights only: history-based strategies
score from the live history on every request, factor models fold the live
history in, new items are embedded on save, and the next training moves the
cut forward.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from personalize.conf import personalize_settings
from personalize.dataset import Dataset
from personalize.dataset.keys import stable_order, time_order
from personalize.evaluation import metrics
from personalize.evaluation.splits import temporal_split
from personalize.strategies import Artifact, History, Strategy
from personalize.training.activation import load_live

logger = logging.getLogger(__name__)

#: The metric the gate compares, and the cut-off of every recorded metric.
GATE_METRIC = "ndcg@10"
K = 10


@dataclass
class Holdout:
    """The training part of a snapshot and what is held out to judge models on it."""

    train: Dataset
    #: Row indices (into ``subject_ids``) of the subjects that are evaluated.
    subjects: np.ndarray
    #: ``(len(subjects), n_items)`` binary CSR of their held-out relevant items.
    relevant: sp.csr_array
    #: Their training histories, as serving would see them at the cut.
    histories: list[History]
    cut: float | None = None
    held_out_events: int = 0

    @property
    def empty(self) -> bool:
        return self.subjects.size == 0


def temporal_holdout(dataset: Dataset, fraction: float, max_subjects: int | None) -> Holdout:
    """Hold out the latest ``fraction`` of events (by time) of ``dataset``.

    Uses the evaluation package's ``temporal`` protocol. A snapshot without
    timestamps, or whose events share one time, has nothing to hold out: the
    whole snapshot trains and the holdout is empty (the gate then has nothing
    to compare on).
    """
    nothing = Holdout(train=dataset, subjects=np.empty(0, dtype=np.int64),
                      relevant=sp.csr_array((0, dataset.n_items), dtype=np.float32), histories=[])
    if not 0.0 < fraction < 1.0 or len(dataset.events) == 0:
        return nothing
    try:
        split = temporal_split(dataset, ratio=1.0 - fraction)
    except ValueError:  # no timestamps
        return nothing
    if split.train.interactions.nnz == 0:
        return nothing
    subjects = split.test_subjects
    if max_subjects is not None and subjects.size > max_subjects:
        # A fixed seed: the same snapshot is always judged on the same subjects.
        subjects = np.sort(np.random.default_rng(0).choice(subjects, max_subjects, replace=False))
    cut = split.params.get("cut")
    held_out = int(np.count_nonzero(dataset.events.timestamp >= cut)) if cut is not None else 0
    return Holdout(
        train=split.train, subjects=subjects, relevant=sp.csr_array(split.test[subjects]),
        histories=_histories(split.train, subjects), cut=cut, held_out_events=held_out,
    )


def _histories(train: Dataset, subjects: np.ndarray) -> list[History]:
    """Each subject's training events, oldest first, as serving's history reads them.

    One stable sort by subject of the (time-ordered) event log, one ``tolist``
    per column, then a slice per subject.
    """
    events = train.events
    wanted = np.zeros(train.n_subjects, dtype=bool)
    wanted[subjects] = True
    keep = ((events.weight != 0) | np.isfinite(events.rating)) & wanted[events.subject_idx]
    index = np.flatnonzero(keep)
    timestamps = events.timestamp[index]
    if np.any(timestamps[1:] < timestamps[:-1]):  # a log not in time order (built by hand)
        index = index[time_order(timestamps)]
    index = index[stable_order(events.subject_idx[index], train.n_subjects)]
    owners = events.subject_idx[index]
    starts = np.searchsorted(owners, subjects, side="left").tolist()
    ends = np.searchsorted(owners, subjects, side="right").tolist()
    rating = events.rating[index]
    rated = np.isfinite(rating)
    weight = events.weight[index]
    ids = train.item_ids[events.item_idx[index]]
    item_ids = ids.tolist()
    weights = np.where(rated & (weight == 0), 1.0, weight).tolist()
    stamps = events.timestamp[index].tolist()
    rated_at = np.flatnonzero(rated)
    rated_ids, rated_values = ids[rated_at].tolist(), rating[rated_at].tolist()
    rated_starts = np.searchsorted(rated_at, starts).tolist()
    rated_ends = np.searchsorted(rated_at, ends).tolist()
    return [
        History(item_ids=item_ids[start:end], weights=weights[start:end],
                timestamps=stamps[start:end],
                ratings=dict(zip(rated_ids[r_start:r_end], rated_values[r_start:r_end],
                                 strict=True)),
                subject_id=subject_id)
        for subject_id, start, end, r_start, r_end in zip(
            train.subject_ids[subjects].tolist(), starts, ends, rated_starts, rated_ends,
            strict=True,
        )
    ]


def evaluate_on_holdout(strategy: Strategy, artifact: Artifact, holdout: Holdout) -> dict[str, Any]:
    """Ranking metrics at 10 of ``artifact`` on the held-out events.

    A subject the model cannot answer for (``CannotRecommend``) counts as a
    miss; any other exception propagates (a model that crashes must not serve).

    Returns:
        ``{"ndcg@10", "hit_rate@10", "recall@10", "precision@10", "map@10",
        "mrr@10", "coverage@10", "subjects", "cannot_recommend"}``; empty when
        nothing is held out.
    """
    if holdout.empty:
        return {}
    index = {v: i for i, v in enumerate(holdout.train.item_ids.tolist())}
    recs = np.full((holdout.subjects.size, K), -1, dtype=np.int64)
    cannot = 0
    # one batch: strategies that score many histories in one product do so
    for row, scored in enumerate(strategy.recommend_many(artifact, holdout.histories, K)):
        if scored is None:
            cannot += 1
            continue
        positions = [index.get(item_id, -1) for item_id, _ in scored[:K]]
        recs[row, : len(positions)] = positions
    # An item repeated in one list (an unknown id mapped to -1 twice is fine) is a bug.
    valid = np.where(recs >= 0, recs, -1 - np.arange(K))
    ordered = np.sort(valid, axis=1)
    if np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise ValueError(f"{type(strategy).__name__} returned the same item twice in one list.")
    ranking = metrics.ranking_metrics(recs, holdout.relevant, K)
    result: dict[str, Any] = {f"{name}@{K}": value for name, value in ranking.items()}
    result[f"coverage@{K}"] = metrics.catalog_coverage(recs, holdout.train.n_items, K)
    result["subjects"] = int(holdout.subjects.size)
    result["cannot_recommend"] = cannot
    return {key: _json_number(value) for key, value in result.items()}


def _json_number(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value


def judge(name: str, candidate_metrics: dict[str, Any], holdout: Holdout) -> tuple[bool, str]:
    """Whether the candidate may go live, and a sentence saying why.

    The live version is read from the database and storage now, not from a
    process's memory: the candidate is judged against what is live at this moment.
    Its own metrics on the holdout are added to ``candidate_metrics``.
    """
    live = load_live(name)
    if live is None:
        return True, "No live version: activated."
    candidate = candidate_metrics.get(GATE_METRIC)
    if candidate is None:
        return True, (f"Nothing held out to compare on; activated over v{live.version} "
                      "because it has newer data.")
    try:
        live_metrics = evaluate_on_holdout(live.strategy, live.artifact, holdout)
    except Exception as exc:  # a live model that crashes should be replaced
        logger.exception("%s v%s cannot be evaluated", name, live.version)
        return True, f"The live v{live.version} failed on the holdout ({exc!r}): activated."
    candidate_metrics[f"live_{GATE_METRIC}"] = live_metrics.get(GATE_METRIC)
    candidate_metrics["live_version"] = live.version
    reference = live_metrics.get(GATE_METRIC)
    if reference is None:
        return True, f"The live v{live.version} has no {GATE_METRIC} on this holdout: activated."
    tolerance = float(personalize_settings.ACTIVATION_TOLERANCE)
    comparison = (f"{GATE_METRIC} {candidate:.4f} vs {reference:.4f} for the live v{live.version} "
                  f"on the same holdout (tolerance {tolerance:g})")
    if candidate >= reference - tolerance:
        return True, f"{comparison}: activated."
    return False, f"{comparison}: worse by {reference - candidate:.4f}; v{live.version} stays live."
