"""Fit strategies on a split, rank for every held-out subject, and measure.

:func:`evaluate` is the one entry point the management command, the
benchmarks and tests call. For each split of the chosen protocol and each
strategy it

1. fits the strategy on the training part and times ``fit``;
2. asks ``recommend`` for the top ``k`` of every subject with held-out
   relevant items, passing the subject's training history (its events oldest
   first, as :func:`personalize.tracking.history.subject_history` gives them
   online). The contract makes a strategy skip history items, so the list is
   the top of a full ranking over every item the subject did not have in
   training;
3. computes the ranking and beyond-accuracy metrics over the ``(n, k)``
   matrix of recommended indices, and for rating models (``"ratings"`` in
   ``needs`` and a ``predict(artifact, subject_id, item_ids)`` method) RMSE and
   MAE over every held-out rating;
4. breaks the ranking figures down by training-history length
   (:mod:`~personalize.evaluation.breakdown`) and puts a bootstrap interval on
   each (:mod:`~personalize.evaluation.uncertainty`), marking the strategies
   whose NDCG is within noise of the best.

A subject the strategy cannot answer (``CannotRecommend``, or an empty list)
gets what the site would serve instead: the ``fallback`` strategy's list
(popularity unless told otherwise), counted in the report.

k-fold results are the mean over folds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from personalize.dataset import Dataset
from personalize.evaluation import metrics, uncertainty
from personalize.evaluation.breakdown import by_history, history_lengths
from personalize.evaluation.splits import Split, make_splits
from personalize.evaluation.summary import (
    add_intervals,
    combine,
    mean_counts,
    nothing_message,
)
from personalize.evaluation.summary import metric_keys as metric_keys  # the entry keys
from personalize.strategies.base import CannotRecommend, Strategy
from personalize.strategies.history import History
from personalize.strategies.popularity import Popularity

logger = logging.getLogger(__name__)

class NothingToEvaluate(ValueError):
    """The protocol left no subject with a held-out item to rank for."""

#: Subjects between two progress-bar updates.
PROGRESS_EVERY = 64


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> Any: ...

    def close(self) -> Any: ...


#: A tqdm-like factory: ``progress(total=..., desc=..., unit=...)``.
ProgressFactory = Callable[..., ProgressBar]


def is_rating_model(strategy: Strategy) -> bool:
    """A strategy that needs ratings and can predict them (the optional ``predict``)."""
    return "ratings" in strategy.needs and strategy.implements("predict")


def missing_needs(strategy: Strategy, dataset: Dataset) -> list[str]:
    """What ``strategy.needs`` that ``dataset`` does not have."""
    have = {"interactions"}
    if dataset.ratings is not None and dataset.ratings.nnz:
        have.add("ratings")
    if any(dataset.item_texts):
        have.add("texts")
    if any(dataset.item_categories):
        have.add("categories")
    if len(dataset.events) and np.any(dataset.events.timestamp > 0):
        have.add("timestamps")
    return sorted(set(strategy.needs) - have)


@dataclass
class _SplitContext:
    """What every strategy needs from one split, prepared once."""

    split: Split
    subjects: np.ndarray
    relevant: sp.csr_array
    histories: list[History]
    item_ids: np.ndarray
    item_index: dict[Any, int]
    popularity: np.ndarray
    n_train_subjects: int
    rating_subjects: np.ndarray
    item_vectors: Any
    item_categories: Sequence[Sequence[str]] | None
    lengths: np.ndarray
    fallback: tuple[Strategy, Any] | None = None


def _histories(train: Dataset, subjects: np.ndarray) -> list[History]:
    """The training History of each subject, built from sorted columns, not per event."""
    events = train.events
    subject_ids = train.subject_ids.tolist()  # Python ids, whatever the array's dtype
    item_ids = train.item_ids
    if len(events) == 0:
        # A snapshot without an event log: the matrix row is the history.
        matrix = sp.csr_array(train.interactions)
        out = []
        for row in subjects:
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            out.append(History(item_ids=item_ids[matrix.indices[start:end]].tolist(),
                               weights=matrix.data[start:end].tolist(),
                               subject_id=subject_ids[row]))
        return out
    # Like subject_history(): events that carry no preference (weight 0) are
    # left out unless they are ratings.
    keep = (events.weight != 0) | np.isfinite(events.rating)
    index = np.flatnonzero(keep)
    order = index[np.lexsort((index, events.timestamp[index], events.subject_idx[index]))]
    sorted_subjects = events.subject_idx[order]
    starts = np.searchsorted(sorted_subjects, subjects, side="left")
    ends = np.searchsorted(sorted_subjects, subjects, side="right")
    has_time = bool(np.any(events.timestamp > 0))
    out = []
    for row, start, end in zip(subjects.tolist(), starts.tolist(), ends.tolist(), strict=True):
        chosen = order[start:end]
        ids = item_ids[events.item_idx[chosen]].tolist()
        rating = events.rating[chosen]
        rated = np.isfinite(rating)
        out.append(History(
            item_ids=ids,
            weights=np.where(rated & (events.weight[chosen] == 0), 1.0,
                             events.weight[chosen]).tolist(),
            timestamps=events.timestamp[chosen].tolist() if has_time else None,
            # later events overwrite earlier ones: the latest rating wins
            ratings=dict(zip(np.asarray(ids, dtype=object)[rated].tolist(),
                             rating[rated].tolist(), strict=True)),
            subject_id=subject_ids[row],
        ))
    return out


def _sample(rows: np.ndarray, max_subjects: int | None, seed: int) -> np.ndarray:
    if max_subjects is None or rows.size <= max_subjects:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=max_subjects, replace=False))


def _prepare(split: Split, *, max_subjects: int | None, seed: int,
             item_vectors: Any) -> _SplitContext:
    train = split.train
    subjects = _sample(split.test_subjects, max_subjects, seed)
    interactions = sp.csr_array(train.interactions)
    positive = interactions.data > 0
    popularity = np.bincount(interactions.indices[positive], minlength=train.n_items)
    rows = np.repeat(np.arange(interactions.shape[0]), np.diff(interactions.indptr))
    n_train_subjects = int(np.unique(rows[positive]).size)
    rating_subjects = np.empty(0, dtype=np.int64)
    if split.test_ratings is not None:
        rating_subjects = _sample(np.flatnonzero(np.diff(split.test_ratings.indptr) > 0),
                                  max_subjects, seed)
    return _SplitContext(
        split=split,
        subjects=subjects,
        relevant=split.test[subjects],
        histories=_histories(train, subjects),
        item_ids=train.item_ids,
        item_index={v: i for i, v in enumerate(train.item_ids.tolist())},
        popularity=popularity,
        n_train_subjects=max(n_train_subjects, 1),
        rating_subjects=rating_subjects,
        item_vectors=item_vectors,
        item_categories=train.item_categories if any(train.item_categories) else None,
        lengths=history_lengths(train, subjects),
    )


def _rank(name: str, strategy: Strategy, artifact: Any, ctx: _SplitContext, k: int,
          bar: ProgressBar | None) -> tuple[np.ndarray, int, int, float]:
    """The ``(n, k)`` matrix of recommended indices, failures, fallback answers, seconds."""
    recs = np.full((ctx.subjects.size, k), -1, dtype=np.int64)
    cannot = fallen_back = 0
    index = ctx.item_index
    started = time.perf_counter()
    for row, history in enumerate(ctx.histories):
        try:
            scored = strategy.recommend(artifact, history, k)
        except CannotRecommend:
            cannot += 1
            scored = []
        if not scored and ctx.fallback is not None:
            scored = _fall_back(ctx.fallback, history, k)
            fallen_back += bool(scored)
        if scored:
            positions = [index.get(item_id, -1) for item_id, _ in scored[:k]]
            recs[row, :len(positions)] = positions
        if bar is not None and (row + 1) % PROGRESS_EVERY == 0:
            bar.update(PROGRESS_EVERY)
    seconds = time.perf_counter() - started
    if bar is not None:
        bar.update(ctx.subjects.size % PROGRESS_EVERY)
    # Unknown ids map to -1 and count as misses; a repeated id is a contract breach.
    valid = recs >= 0
    ordered = np.sort(np.where(valid, recs, -1 - np.arange(k)), axis=1)
    if k > 1 and np.any(ordered[:, 1:] == ordered[:, :-1]):
        raise ValueError(f"Strategy {name!r} returned the same item twice in one list.")
    return recs, cannot, fallen_back, seconds


def _fall_back(fallback: tuple[Strategy, Any], history: History, k: int) -> list[Any]:
    strategy, artifact = fallback
    try:
        return list(strategy.recommend(artifact, history, k))
    except CannotRecommend:
        return []


def _predict(strategy: Any, artifact: Any, ctx: _SplitContext) -> tuple[float, float]:
    ratings = ctx.split.test_ratings
    if ratings is None or ctx.rating_subjects.size == 0:
        return math.nan, math.nan
    subject_ids = ctx.split.train.subject_ids.tolist()
    predicted, actual = [], []
    for row in ctx.rating_subjects.tolist():
        start, end = ratings.indptr[row], ratings.indptr[row + 1]
        items = ctx.item_ids[ratings.indices[start:end]]
        values = np.asarray(strategy.predict(artifact, subject_ids[row], items.tolist()),
                            dtype=np.float64)
        predicted.append(values)
        actual.append(ratings.data[start:end])
    predicted_all, actual_all = np.concatenate(predicted), np.concatenate(actual)
    if not np.all(np.isfinite(predicted_all)):
        raise ValueError(
            f"{type(strategy).__name__}.predict returned a non-finite rating; "
            "predict must fall back to a default (such as the global mean) instead."
        )
    return metrics.rmse(predicted_all, actual_all), metrics.mae(predicted_all, actual_all)


def _evaluate_one(name: str, strategy: Strategy, ctx: _SplitContext, k: int,
                  progress: ProgressFactory | None) -> dict[str, Any]:
    """One strategy's figures on one split; a strategy that raises is reported, not fatal.

    Any error other than :class:`CannotRecommend` (a bug in the strategy, or a
    breach of its contract) becomes ``{"failed": "<error>"}`` and is logged with
    its traceback, so one broken strategy does not lose the others' results.
    """
    try:
        return _measure(name, strategy, ctx, k, progress)
    except Exception as exc:  # reported per strategy; the others still run
        logger.exception("Evaluating strategy %r failed.", name)
        return {"failed": f"{type(exc).__name__}: {exc}"}


def _measure(name: str, strategy: Strategy, ctx: _SplitContext, k: int,
             progress: ProgressFactory | None) -> dict[str, Any]:
    train = ctx.split.train
    missing = missing_needs(strategy, train)
    if missing:
        return {"skipped": f"needs {', '.join(missing)}, which this dataset lacks"}
    started = time.perf_counter()
    try:
        artifact = strategy.fit(train)
    except CannotRecommend as exc:
        return {"skipped": f"cannot train: {exc}"}
    fit_seconds = time.perf_counter() - started

    bar = progress(total=int(ctx.subjects.size), desc=name, unit="subject") if progress else None
    try:
        recs, cannot, fallen_back, seconds = _rank(name, strategy, artifact, ctx, k, bar)
    finally:
        if bar is not None:
            bar.close()
    per_subject = metrics.ranking_metrics_per_subject(recs, ctx.relevant, k)
    result: dict[str, Any] = {
        f"{metric}@{k}": float(values.mean()) if values.size else math.nan
        for metric, values in per_subject.items()
    }
    result[f"coverage@{k}"] = metrics.catalog_coverage(recs, train.n_items, k)
    if ctx.item_vectors is not None or ctx.item_categories is not None:
        result[f"diversity@{k}"] = metrics.intra_list_diversity(
            recs, k, item_vectors=ctx.item_vectors, item_categories=ctx.item_categories)
    else:
        result[f"diversity@{k}"] = math.nan
    result[f"novelty@{k}"] = metrics.novelty(recs, ctx.popularity, ctx.n_train_subjects, k)
    result["rmse"], result["mae"] = (
        _predict(strategy, artifact, ctx) if is_rating_model(strategy) else (math.nan, math.nan)
    )
    result["fit_seconds"] = fit_seconds
    result["recommend_ms"] = 1000.0 * seconds / max(ctx.subjects.size, 1)
    result["subjects"] = int(ctx.subjects.size)
    result["cannot_recommend"] = cannot
    result["fallback"] = fallen_back
    result[_PER_SUBJECT] = per_subject
    return result


#: The key of a run's per-subject arrays; taken out before the report is built.
_PER_SUBJECT = "_per_subject"


@dataclass
class Rankings:
    """The top-``k`` lists one strategy gave on one split, for custom analyses.

    Attributes:
        subjects: row index (in the split's datasets) of each evaluated subject.
        recs: ``(len(subjects), k)`` recommended item indices, ``-1`` padded.
        relevant: held-out relevance, one row per subject (rows of ``split.test``).
        hits: ``(len(subjects), k)`` booleans, relevant or not at each position.
        artifact: what ``fit`` returned (reuse it to rank another split).
        fit_seconds: the time ``fit`` took (0 when an artifact was given).
        cannot_recommend: subjects for whom the strategy raised CannotRecommend.
    """

    subjects: np.ndarray
    recs: np.ndarray
    relevant: sp.csr_array
    hits: np.ndarray
    artifact: Any
    fit_seconds: float
    cannot_recommend: int


def rank(strategy: Strategy, split: Split, k: int = 10, *, artifact: Any = None,
         max_subjects: int | None = None, seed: int = 42, name: str = "",
         progress: ProgressFactory | None = None) -> Rankings:
    """Fit (unless ``artifact`` is given) and rank for every held-out subject of ``split``.

    The building block of :func:`evaluate`, public for analyses the report
    does not cover (per-subject hits, subsets of subjects, cold-start checks).
    """
    ctx = _prepare(split, max_subjects=max_subjects, seed=seed, item_vectors=None)
    fit_seconds = 0.0
    if artifact is None:
        started = time.perf_counter()
        artifact = strategy.fit(split.train)
        fit_seconds = time.perf_counter() - started
    name = name or type(strategy).__name__
    bar = progress(total=int(ctx.subjects.size), desc=name, unit="subject") if progress else None
    try:
        recs, cannot, _, _ = _rank(name, strategy, artifact, ctx, k, bar)
    finally:
        if bar is not None:
            bar.close()
    return Rankings(subjects=ctx.subjects, recs=recs, relevant=ctx.relevant,
                    hits=metrics.hits(recs, ctx.relevant, k), artifact=artifact,
                    fit_seconds=fit_seconds, cannot_recommend=cannot)


def evaluate_splits(
    strategies: Mapping[str, Strategy],
    splits: Sequence[Split],
    *,
    k: int = 10,
    seed: int = 42,
    protocol: str | None = None,
    max_subjects: int | None = None,
    item_vectors: np.ndarray | None = None,
    progress: ProgressFactory | None = None,
    fallback: Strategy | str | None = "popular",
    resamples: int = uncertainty.DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """Evaluate strategies on ready-made splits (see :func:`evaluate`).

    Use this to evaluate a hand-built split, such as one from
    :func:`~personalize.evaluation.splits.hold_out_items` for a cold-start check.

    Raises:
        NothingToEvaluate: no split has a subject to rank for; the message
            says how many subjects the protocol dropped, why, and what to try.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if resamples < 0:
        raise ValueError(f"resamples must be 0 (no intervals) or more, got {resamples}")
    if not splits:
        raise ValueError("No split to evaluate on.")
    protocol = protocol or splits[0].protocol
    if not any(split.test_subjects.size for split in splits):
        raise NothingToEvaluate(nothing_message(protocol, splits))
    fallback_strategy = _fallback_strategy(fallback)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in strategies}
    lengths, evaluated = [], []
    for split in splits:  # one split's histories in memory at a time
        ctx = _prepare(split, max_subjects=max_subjects, seed=seed, item_vectors=item_vectors)
        lengths.append(ctx.lengths)
        evaluated.append(ctx.subjects.size)
        if fallback_strategy is not None and ctx.subjects.size:
            try:
                ctx.fallback = (fallback_strategy, fallback_strategy.fit(split.train))
            except CannotRecommend:  # nothing to be popular with: no fallback on this split
                logger.warning("The fallback %r cannot train on this split.", fallback)
        for name, strategy in strategies.items():
            runs[name].append(_evaluate_one(name, strategy, ctx, k, progress))
    per_subject = {name: [run.pop(_PER_SUBJECT, None) for run in runs[name]]
                   for name in strategies}
    folds = len(splits) if len(splits) > 1 else None
    results = [combine(name, runs[name], k, folds) for name in strategies]
    for entry in results:
        arrays = per_subject[entry["strategy"]]
        if "failed" not in entry and "skipped" not in entry:
            pooled = {m: np.concatenate([a[m] for a in arrays]) for m in metrics.RANKING_METRICS}
            entry["by_history"] = by_history(pooled, np.concatenate(lengths), k, len(splits))
    if resamples:
        add_intervals(results, per_subject, k, resamples, seed)
    return {
        "protocol": protocol,
        "k": k,
        "seed": seed,
        "subjects": round(float(np.mean(evaluated))),
        "dropped": mean_counts([split.dropped for split in splits]),
        "cold_subjects": round(float(np.mean([np.count_nonzero(n == 0) for n in lengths]))),
        "fallback": None if fallback_strategy is None else _fallback_name(fallback),
        "resamples": resamples,
        "results": results,
    }


def _fallback_strategy(fallback: Strategy | str | None) -> Strategy | None:
    if fallback is None or isinstance(fallback, Strategy):
        return fallback
    if fallback == "popular":
        return Popularity()
    raise ValueError(f"Unknown fallback {fallback!r}; give 'popular', a Strategy or None.")


def _fallback_name(fallback: Strategy | str | None) -> str:
    return fallback if isinstance(fallback, str) else type(fallback).__name__


def evaluate(
    strategies: Mapping[str, Strategy],
    dataset: Dataset,
    protocol: str = "stratified",
    *,
    k: int = 10,
    seed: int = 42,
    ratio: float = 0.75,
    n: int = 1,
    folds: int = 5,
    max_subjects: int | None = None,
    item_vectors: np.ndarray | None = None,
    progress: ProgressFactory | None = None,
    keep_cold: bool = True,
    fallback: Strategy | str | None = "popular",
    resamples: int = uncertainty.DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """Compare strategies on one dataset under one protocol.

    Args:
        strategies: name -> strategy instance, in report order.
        dataset: the full snapshot; it is split here.
        protocol: ``stratified``, ``temporal``, ``leave-last-n`` or ``kfold``.
        k: the list length and metric cut-off.
        seed: seeds the split and any subject sampling.
        ratio: train share for ``stratified`` / ``temporal``.
        n: items held out per subject for ``leave-last-n``.
        folds: folds for ``kfold``.
        max_subjects: evaluate at most this many (randomly chosen) subjects.
        item_vectors: ``(n_items, d)`` vectors for intra-list diversity;
            item categories are used when omitted.
        progress: a tqdm-like factory, called once per strategy and split.
        keep_cold: ``temporal`` and ``leave-last-n`` evaluate subjects with no
            training history too (their held-out items are the target).
        fallback: what a subject the strategy cannot answer is served:
            ``"popular"`` (the placement fallback), a fitted-per-split
            :class:`Strategy`, or ``None`` for an empty list (a miss).
        resamples: bootstrap resamples for the intervals (0: none).

    Returns:
        ``{"protocol", "k", "seed", "results": [{"strategy": name,
        "precision@k": ..., ..., "fit_seconds": ...}]}``; a figure that does
        not apply (RMSE of a ranking-only model) is ``None``.
    """
    splits = make_splits(dataset, protocol, ratio=ratio, n=n, folds=folds, seed=seed,
                         keep_cold=keep_cold)
    return evaluate_splits(strategies, splits, k=k, seed=seed, protocol=protocol,
                           max_subjects=max_subjects, item_vectors=item_vectors,
                           progress=progress, fallback=fallback, resamples=resamples)
