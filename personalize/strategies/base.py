"""The strategy plugin contract: every hook core may call, with its default.

A strategy is a small class named in ``PERSONALIZE["STRATEGIES"]`` by dotted
path, or published by a package under the ``personalize.strategies`` entry-point
group. It declares typed options (a dataclass) and the data it needs, builds an
artifact in :meth:`Strategy.fit` and answers from it in :meth:`Strategy.recommend`.
Every other hook has a default here; core calls nothing a strategy does not
declare through this class. :class:`personalize.testing.StrategyContractTests`
checks a strategy against all of it.

Item ids are the dataset's ids: ``Item.pk`` for a snapshot built from the
database, the file's raw ids for one read from a file.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from personalize.dataset import Dataset
from personalize.strategies.artifacts import Artifact, ArtifactFormatError
from personalize.strategies.history import History, ItemId

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

Scored = list[tuple[ItemId, float]]

#: Arrays with one row per subject that erasure zeroes besides ``subject_*`` /
#: ``user_*`` names and those an artifact lists in ``meta["subject_arrays"]``.
SUBJECT_ARRAY_NAMES = frozenset({"pu", "bu", "user_mean"})

#: Values of :attr:`Strategy.generic_reason`: "Recommended for you", "Popular in
#: <category>" (or "Popular right now"), "Trending now".
GENERIC_REASONS = ("recommended", "popular", "trending")
#: Values of :attr:`Strategy.similar_reason`: "Similar to X" (content or taste),
#: "Customers who bought X also bought this" (co-occurrence in what people bought).
SIMILAR_REASONS = ("similar", "bought_together")


class CannotRecommend(Exception):  # named as a sentence: "raise CannotRecommend(...)"
    """The strategy has nothing sound to say for this request; the caller falls back."""


@dataclasses.dataclass(frozen=True)
class Options:
    """Base class for a strategy's options; subclasses add typed fields with defaults.

    Override :meth:`validate` to reject bad values with a ``ValueError`` that
    names the option; the system check shows it.
    """

    def validate(self) -> None:
        """Raise ``ValueError`` naming the option when a value is out of range."""

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict (what artifacts and model versions record)."""
        return dataclasses.asdict(self)


def class_path(strategy: Strategy | type[Strategy]) -> str:
    """The dotted path of a strategy class (what artifacts record)."""
    cls = strategy if isinstance(strategy, type) else type(strategy)
    return f"{cls.__module__}.{cls.__qualname__}"


class Strategy(ABC):
    """Base class every recommender strategy derives from.

    Subclasses implement :meth:`fit` and :meth:`recommend`; every other hook
    is optional and documents what its default does.
    """

    #: The name used when the strategy is published through an entry point.
    name: ClassVar[str] = ""
    #: The dataclass holding this strategy's options.
    options_class: ClassVar[type[Options]] = Options
    #: What the strategy reads from the dataset: any of "interactions",
    #: "ratings", "texts", "categories", "timestamps".
    needs: ClassVar[frozenset[str]] = frozenset({"interactions"})
    #: Bumped whenever the artifact layout changes; :meth:`check_artifact`
    #: refuses other versions.
    artifact_version: ClassVar[int] = 1
    #: What serving says of an item this strategy picked when :meth:`explain`
    #: names no history item: one of :data:`GENERIC_REASONS`.
    generic_reason: ClassVar[str] = "recommended"
    #: What serving says of the items :meth:`similar` finds ("Similar to X" or
    #: "Customers who bought X also bought this"): one of :data:`SIMILAR_REASONS`.
    similar_reason: ClassVar[str] = "similar"

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

    @classmethod
    def implements(cls, hook: str) -> bool:
        """Whether this class overrides the optional ``hook`` of :class:`Strategy`."""
        return getattr(cls, hook) is not getattr(Strategy, hook)

    # --- training (a Celery worker) -------------------------------------------------

    @abstractmethod
    def fit(self, dataset: Dataset) -> Artifact:
        """Train on a snapshot and return the artifact to save.

        Build the artifact with :meth:`new_artifact`, which stamps the
        metadata core needs to serve it later.
        """

    def refit(self, dataset: Dataset, previous: Artifact) -> Artifact:
        """Train again on a new snapshot, reusing what still holds in ``previous``.

        Training calls it instead of :meth:`fit` when the class overrides it
        and a version of the strategy is live: ``previous`` is that version's
        artifact, already accepted by :meth:`check_artifact` (it may have been
        trained with other options). A content model reuses the vectors of items
        whose text did not change, so a retraining on new events embeds
        nothing again. The result must serve like :meth:`fit`'s on the same
        snapshot. The default calls :meth:`fit`.
        """
        return self.fit(dataset)

    def new_artifact(self, arrays: dict[str, np.ndarray] | None = None, **meta: Any) -> Artifact:
        """An artifact stamped with this strategy's class path, layout version and options."""
        return Artifact(arrays=dict(arrays or {}), meta={
            "strategy": class_path(self),
            "artifact_version": type(self).artifact_version,
            "options": self.options.as_dict(),
            **meta,
        })

    def check_artifact(self, artifact: Artifact) -> None:
        """Refuse an artifact written by another class or layout version.

        Checked once per artifact object (the answer is kept in ``artifact.cache``).

        Raises:
            ArtifactFormatError: naming what wrote the artifact.
        """
        if artifact.cache.get("checked_by") is type(self):
            return
        path, version = artifact.meta.get("strategy"), artifact.meta.get("artifact_version")
        if path != class_path(self):
            raise ArtifactFormatError(
                f"Artifact was written by {path!r}; {class_path(self)} cannot read it."
            )
        if version != type(self).artifact_version:
            raise ArtifactFormatError(
                f"Artifact layout version {version!r}; {class_path(self)} reads "
                f"version {type(self).artifact_version}. Retrain the strategy."
            )
        artifact.cache["checked_by"] = type(self)

    # --- serving (the web process: vectorised NumPy, no per-item Python loops) -------

    @abstractmethod
    def recommend(
        self, artifact: Artifact, history: History, k: int, exclude: Iterable[ItemId] = ()
    ) -> Scored:
        """The ``k`` best unseen, non-excluded items for ``history``, best first.

        At most ``k`` pairs ``(item_id, score)``, never an id in ``exclude``
        nor one in the history.

        Raises:
            CannotRecommend: nothing sound can be said (an unknown subject, an
                empty history for a history-based model); the caller falls back.
        """

    def recommend_many(
        self, artifact: Artifact, histories: Sequence[History], k: int,
        exclude: Iterable[ItemId] = (),
    ) -> list[Scored | None]:
        """:meth:`recommend` for each of ``histories`` (evaluation, the training gate).

        The default calls :meth:`recommend` in a loop; a strategy that scores a
        batch in one product overrides it and gives the same lists.

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
        """Items like ``item_id``, best first (``similar_items()``, "Similar to X").

        Raises:
            CannotRecommend: the default: this strategy does not find similar items.
        """
        raise CannotRecommend(f"{type(self).__name__} does not find similar items")

    def score_items(
        self, artifact: Artifact, history: History, item_ids: Sequence[ItemId]
    ) -> np.ndarray | None:
        """The score of each of ``item_ids`` for ``history`` (NaN where there is none).

        The hybrids blend their parts with it. History items are not masked.
        The default, ``None``, says this strategy cannot score given items: a
        hybrid then reads its scores from its :meth:`recommend` list.

        Raises:
            CannotRecommend: nothing sound can be said for this history.
        """
        return None

    def explain(self, artifact: Artifact, history: History, item_id: ItemId) -> ItemId | None:
        """The history item that most supports ``item_id`` ("Because you bought X").

        Serving words the reason by what the subject did with that item (the
        strongest of its events: bought, added to the cart, rated, viewed).
        The default, ``None``, gives the strategy's :attr:`generic_reason`.
        """
        return None

    def explain_many(
        self, artifact: Artifact, history: History, item_ids: Sequence[ItemId]
    ) -> list[ItemId | None]:
        """:meth:`explain` of each of ``item_ids``, in order (serving explains a block at once).

        The default calls :meth:`explain` in a loop. Any exception propagates;
        serving then asks :meth:`explain` item by item.
        """
        return [self.explain(artifact, history, item_id) for item_id in item_ids]

    def fold_in(self, artifact: Artifact, history: History) -> np.ndarray | None:
        """A subject vector for ``history`` without retraining (factor and profile models).

        The default, ``None``: history-based strategies read the latest
        history on every call and need none.
        """
        return None

    def predict(
        self, artifact: Artifact, subject_id: Any, item_ids: Sequence[ItemId],
        history: History | None = None,
    ) -> np.ndarray | None:
        """Rating estimates of one subject for ``item_ids`` (rating models; evaluation's RMSE).

        The default, ``None``: this strategy does not predict ratings.
        """
        return None

    def item_vectors(self, artifact: Artifact, item_ids: Sequence[ItemId]) -> np.ndarray | None:
        """An ``(len(item_ids), d)`` array of item vectors (diversity re-ranking).

        Rows of unknown items are zero. The default, ``None``: no vectors.
        """
        return None

    def upsert_items(self, artifact: Artifact, items: Sequence[Any]) -> Artifact | None:
        """Add or replace the rows of new or changed catalog items without retraining.

        ``items`` are :class:`~personalize.models.Item` rows. Content models
        override it so that a new product is recommendable before the next
        training; return the artifact, or ``None`` after changing it in place.
        Only strategies that override it are asked (:meth:`implements`).
        """
        return None

    # --- privacy -----------------------------------------------------------------------

    def forget_subjects(self, artifact: Artifact, subject_ids: Iterable[Any]) -> int:
        """Remove subjects from a loaded artifact (erasure); returns how many rows it forgot.

        After it, the artifact must treat each subject as one it never saw.
        The default handles the conventional layout: the subject leaves the
        ``subject_ids`` index (its entry becomes ``-1`` or ``""``) and its rows
        are zeroed in every per-subject array (names starting with ``subject_``
        or ``user_``, those of :data:`SUBJECT_ARRAY_NAMES`, those listed in
        ``meta["subject_arrays"]``, and the data of CSR-like
        ``<prefix>.indptr`` structures with one row per subject). A strategy
        that keeps per-subject state in another shape overrides it. Derived
        structures in ``artifact.cache`` are dropped.
        """
        if "subject_ids" not in artifact.arrays:
            return 0
        rows = _subject_rows(artifact.arrays["subject_ids"], list(subject_ids))
        if rows.size == 0:
            return 0
        ids = artifact.arrays["subject_ids"]
        n = len(ids)
        declared = set(artifact.meta.get("subject_arrays", ()))
        for name, array in list(artifact.arrays.items()):
            if name == "subject_ids" or array.ndim == 0 or array.shape[0] != n:
                continue
            if name in declared or name in SUBJECT_ARRAY_NAMES or name.startswith(
                ("subject_", "user_")
            ):
                artifact.arrays[name] = _zeroed(array, rows)
        for name in [k for k in artifact.arrays if k.endswith(".indptr")]:
            indptr = artifact.arrays[name]
            if len(indptr) != n + 1:
                continue
            prefix, total = name[: -len("indptr")], int(indptr[-1])
            spans = np.concatenate([np.arange(indptr[r], indptr[r + 1]) for r in rows])
            for sibling in [k for k in artifact.arrays if k.startswith(prefix) and k != name]:
                array = artifact.arrays[sibling]
                if array.ndim >= 1 and array.shape[0] == total and spans.size:
                    artifact.arrays[sibling] = _zeroed(array, spans)
        tombstoned = ids.copy()
        tombstoned[rows] = -1 if ids.dtype.kind in "iu" else ""
        artifact.arrays["subject_ids"] = tombstoned
        artifact.cache.clear()
        return int(rows.size)

    # --- configuration -----------------------------------------------------------------

    def check(self) -> list[CheckMessage]:
        """Extra system-check messages about this strategy's configuration (none by default)."""
        return []

    def max_items(self) -> int | None:
        """The largest catalog this strategy can train on, or ``None`` for no limit.

        The system check ``personalize.E020`` compares it with the catalog.
        """
        return None


def _subject_rows(ids: np.ndarray, wanted: list[Any]) -> np.ndarray:
    """The rows of ``ids`` holding any of ``wanted`` (compared as integers or as text)."""
    if not wanted:
        return np.empty(0, dtype=np.int64)
    if ids.dtype.kind in "iu":
        numeric = [int(s) for s in wanted if str(s).lstrip("-").isdigit()]
        if not numeric:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(np.isin(ids, np.asarray(numeric, dtype=ids.dtype)))
    return np.flatnonzero(np.isin(ids.astype(str), np.asarray([str(s) for s in wanted])))


def _zeroed(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    # a copy: a loaded artifact's arrays may be read-only or shared
    array = array.copy()
    array[rows] = 0
    return array
