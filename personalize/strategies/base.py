"""The strategy plugin contract.

A strategy is a small class named in ``PERSONALIZE["STRATEGIES"]`` by dotted
path, or published by a package under the ``personalize.strategies`` entry-point
group. It declares typed options (a dataclass) and the data it needs, and
implements:

``fit(dataset) -> Artifact``
    Offline, in a Celery worker. ``dataset`` is a
    :class:`personalize.training.dataset.Dataset` snapshot, never a queryset.
``recommend(artifact, history, k, exclude) -> list[(item_id, score)]``
    Online, in the web process: vectorised NumPy, no per-item Python loops.
    Best first, at most ``k`` pairs, never an id in ``exclude`` nor one in the
    history. Raises :class:`CannotRecommend` when it has nothing sound to say
    (unknown subject, empty history for a history-based model) so the caller
    falls back; it never returns junk.
``recommend_many(artifact, histories, k, exclude)`` (optional)
    ``recommend`` for many histories at once (evaluation, precomputed lists):
    one list per history, ``None`` where ``recommend`` would raise
    :class:`CannotRecommend`. The default calls ``recommend`` in a loop;
    strategies that can score a batch in one product override it and give
    the same lists.
``similar(artifact, item_id, k, exclude)`` (optional)
    Items like one item. Raises :class:`CannotRecommend` by default.
``fold_in(artifact, history)`` (optional)
    A subject vector computed from a history without retraining, for factor
    and profile models. Returns ``None`` by default (history-based strategies
    need none: they read the latest history on every call).
``explain(artifact, history, item_id)`` (optional)
    The history item that most supports ``item_id``, for "Because you viewed X".
``explain_many(artifact, history, item_ids)`` (optional)
    ``explain`` for every item of a block at once (serving explains each
    computed block this way): one answer per item, in order. The default calls
    ``explain`` in a loop; strategies that can answer in one vectorised pass
    override it and give the same answers.
``check()`` (optional)
    Extra Django system-check messages about this strategy's configuration.

Item ids are the dataset's ids: ``Item.pk`` for a snapshot built from the
database, the file's raw ids for one read from a file.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

    from personalize.training.artifacts import Artifact
    from personalize.training.dataset import Dataset

ItemId = Any
Scored = list[tuple[ItemId, float]]


class CannotRecommend(Exception):  # named as a sentence: "raise CannotRecommend(...)"
    """The strategy has nothing sound to say for this request; the caller falls back."""


@dataclass(frozen=True)
class History:
    """What one subject did, oldest first, as the strategy sees it.

    Attributes:
        item_ids: the dataset item ids interacted with.
        weights: the implicit-feedback weight of each interaction (same length).
        timestamps: POSIX seconds of each interaction, or ``None`` if unknown.
        ratings: explicit ratings keyed by item id, for rating models.
        subject_id: the dataset's id of the subject (``Subject.pk`` from the
            database), when known; factor models use it to find a trained vector.
    """

    item_ids: Sequence[ItemId] = ()
    weights: Sequence[float] | None = None
    timestamps: Sequence[float] | None = None
    ratings: dict[ItemId, float] = field(default_factory=dict)
    subject_id: Any = None
    #: This history's columns over an artifact's items, by id array and option
    #: (:func:`personalize.strategies.common.history_matrix` fills it): the parts
    #: of a blend and its explanations read the same history more than once.
    encodings: dict[Any, Any] = field(default_factory=dict, init=False, repr=False,
                                      compare=False)

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getstate__(self) -> dict[str, Any]:
        # a pickled or copied history leaves the memo (and the artifacts' id arrays) behind
        return {**self.__dict__, "encodings": {}}

    @property
    def weight_array(self) -> np.ndarray:
        if self.weights is None:
            return np.ones(len(self.item_ids), dtype=np.float32)
        return np.asarray(self.weights, dtype=np.float32)


@dataclass(frozen=True)
class Options:
    """Base class for a strategy's options; subclasses add typed fields with defaults.

    Override :meth:`validate` to reject bad values with a ``ValueError`` that
    names the option; the system check shows it.
    """

    def validate(self) -> None:
        """Raise ``ValueError`` naming the option when a value is out of range."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Strategy(ABC):
    """Base class every recommender strategy derives from."""

    #: The name used when the strategy is published through an entry point.
    name: ClassVar[str] = ""
    #: The dataclass holding this strategy's options.
    options_class: ClassVar[type[Options]] = Options
    #: What the strategy reads from the dataset: any of "interactions",
    #: "ratings", "texts", "categories", "timestamps".
    needs: ClassVar[frozenset[str]] = frozenset({"interactions"})
    #: Bumped whenever the artifact layout changes; load refuses other versions.
    artifact_version: ClassVar[int] = 1

    def __init__(self, **options: Any) -> None:
        fields = {f.name for f in dataclasses.fields(self.options_class)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no option {unknown[0]!r}; "
                f"valid options: {', '.join(sorted(fields)) or '(none)'}"
            )
        self.options = self.options_class(**options)
        self.options.validate()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options.as_dict()})"

    @abstractmethod
    def fit(self, dataset: Dataset) -> Artifact:
        """Train on a snapshot and return the artifact to save."""

    @abstractmethod
    def recommend(
        self, artifact: Artifact, history: History, k: int, exclude: Iterable[ItemId] = ()
    ) -> Scored:
        """The ``k`` best unseen, non-excluded items for ``history``, best first."""

    def recommend_many(
        self, artifact: Artifact, histories: Sequence[History], k: int,
        exclude: Iterable[ItemId] = (),
    ) -> list[Scored | None]:
        """:meth:`recommend` for each of ``histories``, with the same ``exclude``.

        Returns:
            One list per history, in order; ``None`` where :meth:`recommend`
            raises :class:`CannotRecommend`. Any other exception propagates.
        """
        excluded = list(exclude)
        lists: list[Scored | None] = []
        for history in histories:
            try:
                lists.append(self.recommend(artifact, history, k, excluded))
            except CannotRecommend:
                lists.append(None)
        return lists

    def similar(
        self, artifact: Artifact, item_id: ItemId, k: int, exclude: Iterable[ItemId] = ()
    ) -> Scored:
        """Items similar to ``item_id``, best first; unsupported by default."""
        raise CannotRecommend(f"{type(self).__name__} does not find similar items")

    def fold_in(self, artifact: Artifact, history: History) -> np.ndarray | None:
        """A subject vector for ``history`` without retraining, or ``None``."""
        return None

    def explain(self, artifact: Artifact, history: History, item_id: ItemId) -> ItemId | None:
        """The history item that most supports recommending ``item_id``, if any."""
        return None

    def explain_many(
        self, artifact: Artifact, history: History, item_ids: Sequence[ItemId]
    ) -> list[ItemId | None]:
        """:meth:`explain` for each of ``item_ids``, in order (one list, same length).

        Any exception propagates; a caller that wants per-item answers despite
        it falls back to :meth:`explain`.
        """
        return [self.explain(artifact, history, item_id) for item_id in item_ids]

    def check(self) -> list[CheckMessage]:
        """Extra system-check messages about this strategy's configuration."""
        return []


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first (ties by lower index).

    ``-inf`` marks excluded positions and is never returned.
    """
    k = min(k, int(np.count_nonzero(np.isfinite(scores))))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.flatnonzero(np.isfinite(scores))
    # lexsort: primary key -score, secondary key index, for deterministic ties
    order = np.lexsort((part, -scores[part]))
    return part[order]


def top_k_set(scores: np.ndarray, k: int, excluded: np.ndarray | None = None) -> np.ndarray:
    """The positions :func:`top_k` returns, in no particular order.

    For a caller that only needs the set (a blend's candidate pool): the same
    partition as :func:`top_k`, hence the same choice among ties at the
    boundary, without counting the finite scores first or sorting the result.

    Args:
        scores: the scores (not changed).
        k: how many.
        excluded: a bool mask of positions treated as ``-inf``: the answer is
            that of ``np.where(excluded, -np.inf, scores)``, without the copy.
    """
    n = len(scores)
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    negated = -scores  # the copy the partition needs anyway takes the exclusions
    if excluded is not None:
        negated[excluded] = np.inf
    part = negated.argpartition(k - 1)[:k] if k < n else np.arange(n)
    return part[np.isfinite(negated[part])]


def top_k_rows(scores: np.ndarray, k: int) -> list[np.ndarray]:
    """:func:`top_k` of each row of a ``(n_rows, n_items)`` score matrix.

    Row ``r`` of the result equals ``top_k(scores[r], k)``: the partition runs
    along each row with the same ``kth``, and the positions that are not
    finite, which a row with fewer than ``k`` finite scores has in its first
    ``k``, are dropped after the sort.
    """
    rows, n = scores.shape
    k = min(int(k), n)
    if k <= 0 or rows == 0:
        return [np.empty(0, dtype=np.int64) for _ in range(rows)]
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), (rows, n))
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    finite = np.isfinite(np.take_along_axis(values, order, axis=1))
    return [row[keep] for row, keep in zip(part, finite, strict=True)]
