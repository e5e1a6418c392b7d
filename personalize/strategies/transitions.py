"""Item-to-item transitions: what people did next, weighted by closeness in their sequence.

Each subject's events are put in time order (equal times keep the order of the
event log). Every event is paired with each of the next ``window`` events of
the same subject; a pair ``(i, j)`` ("``j`` followed ``i``") counts
``distance_decay ** (d - 1)`` for events ``d`` apart, times the product of the
two events' weights (a purchase after a view counts more than two views),
times ``0.5 ** (age / time_half_life_days)`` when that option is set (``age``:
the later event's days before the snapshot's last event). The reverse pair
``(j, i)`` counts ``backward`` times as much (0: strictly what came next).
Events that carry no preference (weight 0 and no rating) and repeats of the
same item next to each other are left out.

The summed counts ``C`` are normalised by the popularity of both ends::

    T[i, j] = C[i, j] / (n_i ** source_alpha * n_j ** alpha)

with ``n`` each item's number of kept events (``alpha`` near 1 favours the
items specific to ``i`` over blockbusters that follow everything), and each
item keeps its ``top_n`` strongest successors.

A history is scored from its end: the last interaction weighs 1 and each one
before it ``history_decay`` times the one after it (the latest interaction of a
repeated item counts), so ``score_j = sum_i h_i T[i, j]``. Items no history
item leads to are not recommended.

Defaults were chosen on MovieLens-100k's validation item (each user's last
training item, leave-last-one-out; never the test item).

Artifact layout (``artifact_version`` 1):

``item_ids``
    the dataset item ids, sorted.
``transitions.*``
    ``(n_items, n_items)`` float32 CSR: row ``i`` holds the items that followed
    ``i`` and their normalised weight ``T[i, j]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personalize.dataset import SECONDS_PER_DAY, Dataset
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend, Options, Scored
from personalize.strategies.common import (
    HistoryRows,
    VectorStrategy,
    history_matrix,
    positions,
    similar_in_table,
)
from personalize.strategies.history import History
from personalize.strategies.recency import check_half_lives, with_recency


@dataclass(frozen=True)
class TransitionsOptions(Options):
    """Options of :class:`Transitions`.

    Attributes:
        window: each event is paired with this many following events.
        distance_decay: weight of a pair ``d`` events apart is ``decay ** (d - 1)``.
        backward: weight of the reverse direction (``j`` before ``i``), 0 to 1.
        alpha: exponent of the target item's popularity in the normalisation.
        source_alpha: exponent of the source item's popularity.
        top_n: successors kept per item.
        history_decay: weight of each history interaction relative to the one
            after it (1: every interaction weighs the same).
        history_half_life_days: also halve a history interaction's weight per
            this many days before the history's latest one (``None``: off).
        time_half_life_days: weigh training pairs by their age before the
            snapshot's last event, halving per this many days (``None``: off).
        binary: ignore event weights (every kept event counts 1).
    """

    window: int = 10
    distance_decay: float = 0.85
    backward: float = 0.5
    alpha: float = 0.5
    source_alpha: float = 0.5
    top_n: int = 200
    history_decay: float = 0.9
    history_half_life_days: float | None = None
    time_half_life_days: float | None = None
    binary: bool = False

    def validate(self) -> None:
        for name in ("window", "top_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("distance_decay", "history_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0 < value <= 1):
                raise ValueError(f"{name} must be in (0, 1], got {value!r}")
        if isinstance(self.backward, bool) or not isinstance(self.backward, int | float) or not (
                0 <= self.backward <= 1):
            raise ValueError(f"backward must be in [0, 1], got {self.backward!r}")
        for name in ("alpha", "source_alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0 <= value <= 2):
                raise ValueError(f"{name} must be in [0, 2], got {value!r}")
        check_half_lives(None, self.history_half_life_days, prefix="history_")
        check_half_lives(None, self.time_half_life_days, prefix="time_")


def _ordered_events(dataset: Dataset, binary: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(subject, item, weight, timestamp)`` of the kept events, by subject then time.

    Equal times keep the event log's order; repeats of an item right after
    itself are merged into the later event (a reload is not a transition).
    """
    events = dataset.events
    keep = (events.weight > 0) | (np.isfinite(events.rating) & (events.weight == 0))
    index = np.flatnonzero(keep)
    order = index[np.lexsort((index, events.timestamp[index], events.subject_idx[index]))]
    subject = events.subject_idx[order].astype(np.int64)
    item = events.item_idx[order].astype(np.int64)
    weight = (np.ones(order.size) if binary
              else np.where(events.weight[order] > 0, events.weight[order], 1.0)
              .astype(np.float64))
    time = events.timestamp[order].astype(np.float64)
    repeat = np.zeros(subject.size, dtype=bool)
    repeat[:-1] = (subject[1:] == subject[:-1]) & (item[1:] == item[:-1])
    return subject[~repeat], item[~repeat], weight[~repeat], time[~repeat]


def _top_per_row(matrix: sp.csr_array, keep: int) -> sp.csr_array:
    """The ``keep`` largest entries of each row (ties: lower column first)."""
    coo = matrix.tocoo()
    rows, cols, vals = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, rows, side="left")
    chosen = (np.arange(rows.size) - starts) < keep
    top = sp.csr_array((vals[chosen], (rows[chosen], cols[chosen])), shape=matrix.shape,
                       dtype=np.float32)
    top.sort_indices()
    return top


class Transitions(VectorStrategy):
    """What people did next after the subject's latest items (sequence-aware)."""

    name = "transitions"
    options_class = TransitionsOptions
    #: similar() reads what people did right before or after the item
    similar_reason: ClassVar[str] = "bought_together"
    #: the event log's order is enough: timestamps only refine it
    needs = frozenset({"interactions"})
    artifact_version: ClassVar[int] = 1
    options: TransitionsOptions

    def fit(self, dataset: Dataset) -> Artifact:
        """Count the time-ordered pairs within the window, one vectorised pass per distance."""
        opts = self.options
        n = dataset.n_items
        subject, item, weight, time = _ordered_events(dataset, opts.binary)
        if opts.time_half_life_days is not None and time.size:
            age = (time.max() - time) / (opts.time_half_life_days * SECONDS_PER_DAY)
            recency = np.exp2(-age)
        else:
            recency = np.ones(time.size)
        sources, targets, values = [], [], []
        for distance in range(1, opts.window + 1):
            if distance >= subject.size:
                break
            same = subject[:-distance] == subject[distance:]
            src, dst = item[:-distance][same], item[distance:][same]
            value = (opts.distance_decay ** (distance - 1)
                     * weight[:-distance][same] * weight[distance:][same]
                     * recency[distance:][same])
            other = src != dst
            sources.append(src[other])
            targets.append(dst[other])
            values.append(value[other])
        empty = np.empty(0, dtype=np.int64)
        src = np.concatenate(sources) if sources else empty
        dst = np.concatenate(targets) if targets else empty
        value = np.concatenate(values) if values else np.empty(0)
        counts = sp.csr_array((value, (src, dst)), shape=(n, n), dtype=np.float64)
        if opts.backward:
            counts = counts + opts.backward * counts.T.tocsr()
        counts = sp.csr_array(counts)
        counts.sum_duplicates()
        popularity = np.bincount(item, minlength=n).astype(np.float64)
        scale = np.maximum(popularity, 1.0)
        coo = counts.tocoo()
        data = coo.data / (scale[coo.row] ** opts.source_alpha * scale[coo.col] ** opts.alpha)
        normalised = sp.csr_array((data, (coo.row, coo.col)), shape=(n, n))
        transitions = _top_per_row(normalised, opts.top_n)
        artifact = self.new_artifact(
            {"item_ids": np.asarray(dataset.item_ids)},
            n_items=n, nnz=int(transitions.nnz),
        )
        artifact.put_csr("transitions", transitions)
        return artifact

    def _weighted(self, history: History) -> History:
        """The history with its position (and time) decay as its recency."""
        decay = self.options.history_decay
        half_life = None if decay >= 1 else -1.0 / np.log2(decay)
        return with_recency(history, half_life, self.options.history_half_life_days)

    def _rows(self, artifact: Artifact, histories: Sequence[History]) -> HistoryRows:
        return history_matrix(artifact, [self._weighted(h) for h in histories], binary=True)

    def item_scores(self, artifact: Artifact, history: History) -> np.ndarray:
        matrix = self._rows(artifact, [history])
        if matrix.nnz == 0:
            raise CannotRecommend("No history item is known to the transitions model.")
        return self._scores(artifact, matrix)[0]

    def item_scores_many(
        self, artifact: Artifact, histories: Sequence[History]
    ) -> tuple[np.ndarray, np.ndarray]:
        """All histories' scores in one sparse product (see :meth:`_scores`)."""
        matrix = self._rows(artifact, histories)
        return self._scores(artifact, matrix), np.diff(matrix.indptr) > 0

    def _scores(self, artifact: Artifact, histories: HistoryRows) -> np.ndarray:
        """``H @ T`` as float64; ``-inf`` where no history item leads."""
        product = histories.tocsr().astype(np.float64) @ artifact.get_csr("transitions")
        scores = sp.csr_array(product).toarray().astype(np.float64, copy=False)
        scores[scores <= 0] = -np.inf
        return scores

    def similar(
        self, artifact: Artifact, item_id: Any, k: int, exclude: Iterable[Any] = ()
    ) -> Scored:
        """The items that most often came right after (or before) ``item_id``."""
        self.check_artifact(artifact)
        return similar_in_table(artifact, "transitions", item_id, k, exclude, "transitions")

    def explain(self, artifact: Artifact, history: History, item_id: Any) -> Any:
        """The recent history item that contributes most to ``item_id``'s score."""
        return self.explain_many(artifact, history, [item_id])[0]

    def explain_many(
        self, artifact: Artifact, history: History, item_ids: Sequence[Any]
    ) -> list[Any]:
        """:meth:`explain` of every item from one ``len(history) x len(item_ids)`` block."""
        self.check_artifact(artifact)
        answers: list[Any] = [None] * len(item_ids)
        targets, found = positions(artifact, item_ids)
        rows = self._rows(artifact, [history])
        if targets.size == 0 or rows.nnz == 0:
            return answers
        block = artifact.get_csr("transitions")[rows.indices][:, targets].toarray()
        contribution = rows.data[:, None].astype(np.float64) * block
        best = np.argmax(contribution, axis=0)
        named = contribution[best, np.arange(targets.size)] > 0
        sources = artifact["item_ids"][rows.indices[best]].tolist()
        for slot, source, ok in zip(np.flatnonzero(found).tolist(), sources, named.tolist(),
                                    strict=True):
            if ok:
                answers[slot] = source
        return answers
