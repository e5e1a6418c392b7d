"""Small strategies for the training tests, switched on with ``settings.PERSONALIZE``.

``CoCount`` is a tiny item kNN (co-occurrence counts); its options make it
fail, block, or learn garbage on purpose. ``TinyFactors`` is a factor model
with a subject index and subject vectors, for fold-in and erasure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from django.core.cache import cache
from django.db import OperationalError

from personalize.strategies.artifacts import Artifact
from personalize.strategies.base import CannotRecommend, Options, Strategy
from personalize.strategies.history import History
from personalize.strategies.progress import report_progress
from personalize.strategies.ranking import top_k

#: Set by a test to make a blocking fit wait; ``STARTED`` tells the test the fit began.
RELEASE = threading.Event()
STARTED = threading.Event()
#: How many times a fit with ``fail="operational-once"`` still has to fail.
FAILURES = {"left": 0}


def worker_flags() -> dict[str, object]:
    """Behaviour switches a test sets in the shared cache for a fit in another process."""
    return cache.get_many(["fail", "block", "sabotage"], version=FLAG_VERSION)


#: Cache key version of the flags, so they never collide with real keys.
FLAG_VERSION = 9173


@dataclass(frozen=True)
class CoCountOptions(Options):
    sabotage: bool = False
    fail: str = ""
    block: bool = False


def _binary(dataset) -> sp.csr_array:
    matrix = sp.csr_array(dataset.interactions, copy=True)
    matrix.data = (matrix.data > 0).astype(np.float32)
    return matrix


def _scores_from_history(artifact: Artifact, history: History, matrix_name: str):
    index = artifact.index_of("item_ids")
    weights = history.weight_array.tolist()
    pairs = [(index[i], w) for i, w in zip(history.item_ids, weights, strict=True) if i in index]
    if not pairs:
        raise CannotRecommend("no known history item")
    positions = np.array([p for p, _ in pairs])
    weights = np.array([w for _, w in pairs], dtype=np.float32)
    scores = weights @ artifact[matrix_name][positions]
    return scores.astype(np.float64), positions


def _finish(artifact: Artifact, scores: np.ndarray, seen: np.ndarray, k: int, exclude: Iterable):
    scores[scores <= 0] = -np.inf
    scores[seen] = -np.inf
    index = artifact.index_of("item_ids")
    excluded = [index[i] for i in exclude if i in index]
    scores[excluded] = -np.inf
    best = top_k(scores, k)
    if best.size == 0:
        raise CannotRecommend("nothing scored")
    return list(zip(artifact["item_ids"][best].tolist(), scores[best].tolist(), strict=True))


class CoCount(Strategy):
    """Items that co-occur with the history, weighted by the history's weights."""

    options_class = CoCountOptions

    def fit(self, dataset) -> Artifact:
        flags = worker_flags()
        if flags.get("fail") == "runtime":
            raise RuntimeError("the fit exploded on purpose")
        if flags.get("block"):
            cache.set("started", 1, version=FLAG_VERSION)
            for _ in range(3600):  # up to 3 minutes: a loaded CI machine is slow
                if cache.get("release", version=FLAG_VERSION):
                    break
                time.sleep(0.05)
        if self.options.fail == "runtime":
            raise RuntimeError("the fit exploded on purpose")
        if self.options.fail == "operational":
            raise OperationalError("the database went away")
        if self.options.fail == "operational-once" and FAILURES["left"] > 0:
            FAILURES["left"] -= 1
            raise OperationalError("the database went away for a moment")
        if self.options.block:
            STARTED.set()
            RELEASE.wait(20)
        x = _binary(dataset)
        cooc = (x.T @ x).toarray().astype(np.float32)
        np.fill_diagonal(cooc, 0)
        if self.options.sabotage or flags.get("sabotage"):  # what nobody does together
            cooc = (cooc == 0).astype(np.float32)
            np.fill_diagonal(cooc, 0)
        return self.new_artifact({"item_ids": np.asarray(dataset.item_ids), "cooc": cooc})

    def recommend(self, artifact, history, k, exclude=()):
        scores, positions = _scores_from_history(artifact, history, "cooc")
        return _finish(artifact, scores, positions, k, exclude)


@dataclass(frozen=True)
class TinyFactorsOptions(Options):
    factors: int = 5


class TinyFactors(Strategy):
    """A factor model: item factors from an SVD, one trained vector per subject."""

    options_class = TinyFactorsOptions

    def fit(self, dataset) -> Artifact:
        x = _binary(dataset).toarray()
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        item_factors = vt[: self.options.factors].T.astype(np.float32)
        subject_factors = (x @ item_factors).astype(np.float32)
        return self.new_artifact({
            "item_ids": np.asarray(dataset.item_ids),
            "subject_ids": np.asarray(dataset.subject_ids),
            "item_factors": item_factors,
            "subject_factors": subject_factors,
        })

    def fold_in(self, artifact, history):
        index = artifact.index_of("item_ids")
        known = [(index[i], w) for i, w in zip(history.item_ids, history.weight_array.tolist(),
                                               strict=True) if i in index]
        if not known:
            return None
        x = np.zeros(len(artifact["item_ids"]), dtype=np.float32)
        for position, weight in known:
            x[position] += weight
        return x @ artifact["item_factors"]

    def subject_vector(self, artifact, history):
        row = artifact.index_of("subject_ids").get(history.subject_id)
        trained = artifact["subject_factors"][row] if row is not None else None
        folded = self.fold_in(artifact, history)
        if trained is None and folded is None:
            raise CannotRecommend("unknown subject, empty history")
        if folded is None:
            return trained
        return folded if trained is None else trained + folded

    def recommend(self, artifact, history, k, exclude=()):
        vector = self.subject_vector(artifact, history)
        scores = (artifact["item_factors"] @ vector).astype(np.float64)
        index = artifact.index_of("item_ids")
        seen = np.array([index[i] for i in history.item_ids if i in index], dtype=np.int64)
        return _finish(artifact, scores, seen, k, exclude)


class Embedder(CoCount):
    """A content model that can add items without retraining (``upsert_items``)."""

    def fit(self, dataset) -> Artifact:
        vectors = np.array([[sum(map(ord, c)) % 97 for c in (cats or ["-"])[:1]] for cats in
                            dataset.item_categories], dtype=np.float32)
        artifact = super().fit(dataset)
        artifact.arrays["item_vectors"] = vectors
        del artifact.arrays["cooc"]
        return artifact

    def upsert_items(self, artifact, items):
        ids = np.array([item.pk for item in items], dtype=artifact["item_ids"].dtype)
        vectors = np.array([[sum(map(ord, (item.categories or ["-"])[0])) % 97] for item in items],
                           dtype=np.float32)
        artifact.arrays["item_ids"] = np.concatenate([artifact["item_ids"], ids])
        artifact.arrays["item_vectors"] = np.concatenate([artifact["item_vectors"], vectors])
        return artifact

    def recommend(self, artifact, history, k, exclude=()):
        index = artifact.index_of("item_ids")
        rows = [index[i] for i in history.item_ids if i in index]
        if not rows:
            raise CannotRecommend("no known item")
        target = artifact["item_vectors"][rows].mean(axis=0)
        scores = 100.0 - np.abs(artifact["item_vectors"] - target).sum(axis=1).astype(np.float64)
        return _finish(artifact, scores, np.array(rows), k, exclude)


class Reusing(CoCount):
    """A CoCount that reuses the live artifact (``refit``) and reports progress while fitting."""

    #: The ``meta["version"]`` of every artifact ``refit`` was given.
    refits: ClassVar[list[object]] = []

    def fit(self, dataset) -> Artifact:
        for done in range(1, 4):
            report_progress("counting pairs", done, 3)
        return super().fit(dataset)

    def refit(self, dataset, previous: Artifact) -> Artifact:
        Reusing.refits.append(previous.meta.get("version"))
        return self.fit(dataset)
