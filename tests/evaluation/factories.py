"""Small hand-built datasets and fake strategies for the evaluation tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from personalize.dataset import Dataset, EventLog
from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend, Options, Strategy
from personalize.strategies.history import History
from personalize.strategies.ranking import top_k


def make_dataset(
    events: Sequence[tuple[Any, ...]],
    *,
    subject_ids: Sequence[Any] | None = None,
    item_ids: Sequence[Any] | None = None,
    with_ratings: bool = False,
    item_categories: Sequence[Sequence[str]] | None = None,
    item_texts: Sequence[str] | None = None,
) -> Dataset:
    """A dataset from ``(subject_idx, item_idx, weight[, rating[, timestamp]])`` rows.

    The interaction matrix is the summed weight per pair and the ratings
    matrix the latest rating per pair, as the real builder makes them.
    """
    rows = [tuple(e) + (np.nan, 0.0)[len(e) - 3:] if len(e) < 5 else tuple(e) for e in events]
    s = np.array([r[0] for r in rows], dtype=np.int32)
    i = np.array([r[1] for r in rows], dtype=np.int32)
    w = np.array([r[2] for r in rows], dtype=np.float32)
    rating = np.array([r[3] for r in rows], dtype=np.float32)
    ts = np.array([r[4] for r in rows], dtype=np.float64)
    n_subjects = len(subject_ids) if subject_ids is not None else int(s.max()) + 1
    n_items = len(item_ids) if item_ids is not None else int(i.max()) + 1
    shape = (n_subjects, n_items)
    interactions = sp.csr_array(sp.coo_array((w, (s, i)), shape=shape))
    interactions.sum_duplicates()
    ratings = None
    if with_ratings:
        latest: dict[tuple[int, int], float] = {}
        for row in sorted(range(len(rows)), key=lambda n: (ts[n], n)):
            if np.isfinite(rating[row]):
                latest[(int(s[row]), int(i[row]))] = float(rating[row])
        keys = list(latest)
        ratings = sp.csr_array(
            (np.array([latest[key] for key in keys], dtype=np.float32),
             ([key[0] for key in keys], [key[1] for key in keys])),
            shape=shape,
        )
    return Dataset(
        subject_ids=np.asarray(subject_ids if subject_ids is not None
                               else np.arange(100, 100 + n_subjects)),
        item_ids=np.asarray(item_ids if item_ids is not None else np.arange(1000, 1000 + n_items)),
        interactions=interactions,
        events=EventLog(s, i, w, rating, ts, np.zeros(len(rows), dtype=np.int16)),
        event_types=["view"],
        ratings=ratings,
        item_categories=([list(c) for c in item_categories] if item_categories
                         else [[] for _ in range(n_items)]),
        item_texts=list(item_texts) if item_texts else ["" for _ in range(n_items)],
    )


def random_dataset(n_subjects: int = 40, n_items: int = 30, density: float = 0.3,
                   seed: int = 0, with_ratings: bool = True) -> Dataset:
    """A random dataset with one rating event per pair, timestamps and a few repeat views."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_subjects, n_items)) < density
    mask[np.arange(n_subjects), rng.integers(0, n_items, n_subjects)] = True
    s, i = np.nonzero(mask)
    events = [(int(a), int(b), 1.0, float(rng.integers(1, 6)), float(rng.integers(1, 10_000)))
              for a, b in zip(s, i, strict=True)]
    # repeat views of some pairs: several events per pair, no rating
    for n in rng.choice(len(events), size=len(events) // 5, replace=False):
        a, b = events[n][:2]
        events.append((a, b, 1.0, np.nan, float(rng.integers(1, 10_000))))
    return make_dataset(events, subject_ids=list(range(7, 7 + n_subjects)),
                        item_ids=[f"item-{n}" for n in range(n_items)], with_ratings=with_ratings)


@dataclass(frozen=True)
class NoOptions(Options):
    pass


class FakePopular(Strategy):
    """Most-interacted items first, unseen and non-excluded."""

    name = "fake_popular"

    def fit(self, dataset: Dataset) -> Artifact:
        matrix = sp.csr_array(dataset.interactions)
        counts = np.bincount(matrix.indices[matrix.data > 0], minlength=dataset.n_items)
        return self.new_artifact({"item_ids": dataset.item_ids, "score": counts.astype(np.float64)})

    def recommend(self, artifact: Artifact, history: History, k: int,
                  exclude: Iterable[Any] = ()) -> list[tuple[Any, float]]:
        scores = artifact["score"].copy()
        index = artifact.index_of()
        seen = [index[x] for x in [*history.item_ids, *exclude] if x in index]
        scores[seen] = -np.inf
        best = top_k(scores, k)
        return list(zip(artifact["item_ids"][best].tolist(), scores[best].tolist(), strict=True))


class FakeHistoryOnly(FakePopular):
    """Like FakePopular, but refuses a subject with fewer than two history items."""

    def recommend(self, artifact: Artifact, history: History, k: int,
                  exclude: Iterable[Any] = ()) -> list[tuple[Any, float]]:
        if len(history) < 2:
            raise CannotRecommend("too short a history")
        return super().recommend(artifact, history, k, exclude)


class FakeRating(FakePopular):
    """A rating model: predicts every subject's mean training rating (global mean if none)."""

    needs: ClassVar[frozenset[str]] = frozenset({"ratings"})

    def fit(self, dataset: Dataset) -> Artifact:
        artifact = super().fit(dataset)
        ratings = sp.csr_array(dataset.ratings)
        sums = np.asarray(ratings.sum(axis=1)).ravel()
        counts = np.diff(ratings.indptr)
        mean = float(ratings.data.mean())
        artifact.arrays["subject_ids"] = dataset.subject_ids
        artifact.arrays["subject_mean"] = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
        artifact.meta["mean"] = mean
        return artifact

    def predict(self, artifact: Artifact, subject_id: Any, item_ids: Sequence[Any]) -> np.ndarray:
        index = artifact.index_of("subject_ids")
        value = (artifact["subject_mean"][index[subject_id]] if subject_id in index
                 else artifact.meta["mean"])
        return np.full(len(item_ids), value, dtype=np.float64)


class FakeNeedsTexts(FakePopular):
    needs: ClassVar[frozenset[str]] = frozenset({"interactions", "texts"})


class FakeBroken(FakePopular):
    """Trains, then fails on every recommendation with an error that is not CannotRecommend."""

    name = "fake_broken"

    def recommend(self, artifact: Artifact, history: History, k: int,
                  exclude: Iterable[Any] = ()) -> list[tuple[Any, float]]:
        raise OverflowError("cannot convert float infinity to integer")
