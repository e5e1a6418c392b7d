"""Surprise's rating models as django-personalize strategies.

``fit`` trains the Surprise algorithm on a Trainset built straight from the
snapshot's ratings CSR, then copies what the algorithm learned into the
artifact as plain NumPy arrays (never a pickle of the algorithm). Everything
online (``recommend``, ``predict``, ``similar``, ``fold_in``, ``explain``) is
computed from those arrays, vectorised over all candidate items, and
``predict`` reproduces Surprise's own ``algo.predict(...).est`` (clipped to the
rating scale, with Surprise's fallbacks for unknown users and items).

Artifact layout (``artifact_version`` 1), for every strategy here:

``subject_ids``, ``item_ids``
    raw ids of Surprise's inner users and items (rated at least once).
``ur.indptr``, ``ur.items``, ``ur.ratings``
    the training ratings per inner user, in Surprise's ``trainset.ur`` order.
``global_mean`` (1,), ``rating_scale`` (2,)
``bu``, ``bi``
    user and item biases (not stored by unbiased SVD / NMF).
``pu``, ``qi`` (SVD, SVD++, NMF), ``yj`` (SVD++)
    user factors, item factors, implicit item factors.
``sim`` (KNNBaseline)
    the dense similarity matrix, users x users when user-based, else items x items.
``dev``, ``co``, ``user_mean`` (SlopeOne)
    mean deviations between items, whether a pair was co-rated, mean rating per user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import surprise
from scipy.optimize import nnls

from personalize.strategies import (
    Artifact,
    CannotRecommend,
    Dataset,
    History,
    ItemId,
    Scored,
    Strategy,
    top_k,
)
from personalize_surprise.options import (
    BaselineOnlyOptions,
    KNNBaselineOptions,
    NMFOptions,
    RatingOptions,
    SlopeOneOptions,
    SVDOptions,
    SVDppOptions,
)
from personalize_surprise.trainset import CannotTrain, RatingData, build_trainset, rating_data

#: Rows of candidate items scored at once by the dense neighbourhood models,
#: so a heavy user on a large catalog never materialises a huge block.
_CHUNK = 2048


@dataclass
class SubjectState:
    """One subject as the scoring code sees it (trained or folded in).

    Attributes:
        row: the inner user index when the subject was in training, else ``None``.
        items: inner indices of the items the subject rated (training order).
        ratings: their ratings.
        seen: inner indices never to recommend (training items and history).
        bu: the subject's bias (0 for models without biases).
        vector: the subject's factor vector (factor models), or the mean rating
            (SlopeOne, as a 1-vector), or the similarity row (user-based kNN).
    """

    row: int | None
    items: np.ndarray
    ratings: np.ndarray
    seen: np.ndarray
    bu: float = 0.0
    vector: np.ndarray | None = None


def _lookup(index: dict[Any, int], key: Any) -> int | None:
    """``index[key]``, tolerating int/str spellings of the same id."""
    if key in index:
        return index[key]
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return index.get(int(key))
    if isinstance(key, int | np.integer):
        return index.get(str(key))
    return None


def _unique_in_order(values: np.ndarray) -> np.ndarray:
    """``values`` without repeats, keeping the first occurrence's position."""
    if len(values) == 0:
        return values
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


class SurpriseStrategy(Strategy):
    """What every Surprise strategy shares: fit, id mapping, ranking, predict.

    Subclasses set :attr:`algo_name` (the Surprise class), extract what the
    fitted algorithm learned in :meth:`_extract`, and score in :meth:`_scores`.
    """

    needs: ClassVar[frozenset[str]] = frozenset({"ratings"})
    artifact_version: ClassVar[int] = 1
    options_class: ClassVar[type[RatingOptions]] = RatingOptions
    #: The ``surprise`` class trained by :meth:`fit`.
    algo_name: ClassVar[str] = ""
    options: Any

    # ------------------------------------------------------------------ fit
    def make_algo(self) -> Any:
        """A fresh, unfitted Surprise algorithm configured from the options."""
        return getattr(surprise, self.algo_name)(**self.options.algo_kwargs())

    def rating_data(self, dataset: Dataset) -> RatingData:
        """The ratings this strategy trains on (see :func:`rating_data`)."""
        return rating_data(dataset, self.options.rating_scale)

    def fit(self, dataset: Dataset) -> Artifact:
        """Train Surprise's algorithm on the snapshot's ratings.

        Explicit ratings are used when the snapshot has any; otherwise the
        implicit interaction weights are used as ratings (``meta["source"]``
        says which).

        Raises:
            CannotTrain: no ratings or interactions, the model would exceed
                its ``max_matrix_rows``, or the algorithm is undefined on these
                ratings (KNNBaseline's ``pearson_baseline``).
        """
        data = self.rating_data(dataset)
        self._check_size(data)
        algo = self.make_algo()
        self._fit_algo(algo, data)
        return self.artifact_from_algo(algo, data)

    def _fit_algo(self, algo: Any, data: RatingData) -> None:
        """Fit ``algo`` on a Trainset of ``data`` (subclasses explain Surprise's failures)."""
        algo.fit(build_trainset(data))

    def artifact_from_algo(self, algo: Any, data: RatingData) -> Artifact:
        """Copy what a fitted Surprise ``algo`` learned on ``data`` into an artifact."""
        artifact = self.new_artifact(
            algorithm=self.algo_name, surprise_version=surprise.__version__,
            source=data.source, n_ratings=len(data.ratings),
        )
        artifact.arrays.update({
            "subject_ids": data.subject_ids,
            "item_ids": data.item_ids,
            "ur.indptr": data.indptr,
            "ur.items": data.items,
            "ur.ratings": data.ratings,
            "global_mean": np.asarray([algo.trainset.global_mean], dtype=np.float64),
            "rating_scale": np.asarray(data.rating_scale, dtype=np.float64),
        })
        self._extract(algo, artifact)
        return artifact

    def _check_size(self, data: RatingData) -> None:
        """Refuse a fit whose dense matrices would not fit (kNN, SlopeOne)."""

    def _extract(self, algo: Any, artifact: Artifact) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ scoring
    def _scores(
        self, artifact: Artifact, subject: SubjectState, items: np.ndarray | None
    ) -> np.ndarray:
        """Unclipped estimates for ``items`` (inner indices; ``None``: all)."""
        raise NotImplementedError

    def _trained_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState:
        """Fill ``bu`` / ``vector`` of a subject seen in training."""
        return subject

    def _folded_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState | None:
        """Fill ``bu`` / ``vector`` from the subject's history ratings, or ``None``."""
        return subject

    def _subject_vector(self, subject: SubjectState) -> np.ndarray | None:
        """What :meth:`fold_in` returns for a folded-in subject."""
        return None

    @staticmethod
    def _mu(artifact: Artifact) -> float:
        return float(artifact["global_mean"][0])

    def _unknown_item_value(self, artifact: Artifact, subject: SubjectState) -> float:
        # Surprise: mu + b_u where biases exist, else PredictionImpossible -> mu.
        if "bu" in artifact:
            return self._mu(artifact) + subject.bu
        return self._mu(artifact)

    def _unknown_subject_values(self, artifact: Artifact, items: np.ndarray) -> np.ndarray:
        # Surprise: mu + b_i where biases exist, else PredictionImpossible -> mu.
        if "bi" in artifact:
            return self._mu(artifact) + artifact["bi"][items]
        return np.full(len(items), self._mu(artifact))

    # ------------------------------------------------------- subjects
    def _item_indices(self, artifact: Artifact, item_ids: Iterable[ItemId]) -> np.ndarray:
        """Inner indices of ``item_ids``; -1 for items the model does not know."""
        index = artifact.index_of("item_ids")
        found = [_lookup(index, item_id) for item_id in item_ids]
        return np.asarray([-1 if i is None else i for i in found], dtype=np.int64)

    def _history_ratings(
        self, artifact: Artifact, history: History
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rated inner items, their ratings, every known history item) from a history.

        Explicit ``history.ratings`` are used when there are any. A model
        trained on implicit weights reads the history's weights (summed per
        item). Otherwise, a history without ratings counts each item as rated
        ``implicit_rating`` (default: the top of the rating scale).
        """
        all_idx = self._item_indices(artifact, history.item_ids)
        valid = all_idx >= 0
        known = _unique_in_order(all_idx[valid])
        if history.ratings:
            keys = list(history.ratings)
            idx = self._item_indices(artifact, keys)
            values = np.asarray([float(history.ratings[key]) for key in keys], dtype=np.float64)
            mask = idx >= 0
            idx, values = idx[mask], values[mask]
            if len(idx):
                seen = _unique_in_order(np.concatenate([known, idx]))
                return idx, values, seen
        if artifact.meta.get("source") == "interactions" and len(known):
            weights = history.weight_array.astype(np.float64)[valid]
            sums = np.zeros(len(artifact["item_ids"]))
            np.add.at(sums, all_idx[valid], weights)
            values = sums[known]
            keep = values != 0
            return known[keep], values[keep], known
        rating = self.options.implicit_rating
        if rating is None:
            rating = float(artifact["rating_scale"][1])
        return known, np.full(len(known), float(rating)), known

    def _state(
        self, artifact: Artifact, history: History | None, subject_id: Any = None,
        use_trained: bool = True,
    ) -> SubjectState | None:
        """The subject to score: its trained row when known, else a fold-in of ``history``."""
        if subject_id is None and history is not None:
            subject_id = history.subject_id
        row = None
        if use_trained and subject_id is not None:
            row = _lookup(artifact.index_of("subject_ids"), subject_id)
        if history is not None:
            items, ratings, history_items = self._history_ratings(artifact, history)
        else:
            items = history_items = np.empty(0, dtype=np.int64)
            ratings = np.empty(0)
        if row is not None:
            indptr = artifact["ur.indptr"]
            start, end = int(indptr[row]), int(indptr[row + 1])
            trained_items = artifact["ur.items"][start:end]
            state = SubjectState(
                row=row, items=trained_items, ratings=artifact["ur.ratings"][start:end],
                seen=np.concatenate([trained_items, history_items]),
            )
            return self._trained_subject(artifact, state)
        if len(items) == 0:
            return None
        return self._folded_subject(
            artifact, SubjectState(row=None, items=items, ratings=ratings, seen=history_items)
        )

    # ------------------------------------------------------- public API
    def recommend(
        self, artifact: Artifact, history: History, k: int, exclude: Iterable[ItemId] = ()
    ) -> Scored:
        """The ``k`` items with the highest estimated rating, best first.

        A subject seen in training is scored from its learned parameters; any
        other subject is folded in from its history's ratings (or items). The
        items it rated in training, its history and ``exclude`` are never
        returned. Scores are the unclipped rating estimates.

        Raises:
            CannotRecommend: the subject is unknown and no history item is
                known to the model.
        """
        state = self._state(artifact, history)
        if state is None:
            raise CannotRecommend(
                f"{type(self).__name__}: unknown subject and no history item known to the model"
            )
        scores = np.array(self._scores(artifact, state, None), dtype=np.float64)
        scores[state.seen] = -np.inf
        excluded = self._item_indices(artifact, exclude)
        scores[excluded[excluded >= 0]] = -np.inf
        best = top_k(scores, k)
        return list(zip(artifact["item_ids"][best].tolist(), scores[best].tolist(), strict=True))

    def predict(
        self, artifact: Artifact, subject_id: Any, item_ids: Sequence[ItemId],
        history: History | None = None,
    ) -> np.ndarray:
        """Rating estimates for one subject and several items, as Surprise predicts them.

        Reproduces ``algo.predict(subject_id, item_id).est`` of the fitted
        Surprise algorithm: clipped to the rating scale, ``mu + b_i`` (or
        ``mu``) for a subject unknown to the model, ``mu + b_u`` (or ``mu``) for
        an unknown item. When ``subject_id`` is unknown and ``history`` is
        given, the subject is folded in from the history instead.

        Args:
            artifact: what :meth:`fit` returned.
            subject_id: the dataset id of the subject.
            item_ids: the items to rate.
            history: optional history for a subject unknown at training time.

        Returns:
            float64 array, one estimate per item id.
        """
        idx = self._item_indices(artifact, item_ids)
        known = idx >= 0
        out = np.empty(len(idx), dtype=np.float64)
        state = self._state(artifact, history, subject_id=subject_id)
        if state is not None:
            if known.any():
                out[known] = self._scores(artifact, state, idx[known])
            out[~known] = self._unknown_item_value(artifact, state)
        else:
            out[known] = self._unknown_subject_values(artifact, idx[known])
            out[~known] = self._mu(artifact)
        low, high = artifact["rating_scale"]
        return np.clip(out, low, high)

    def fold_in(self, artifact: Artifact, history: History) -> np.ndarray | None:
        """The subject vector computed from ``history`` alone (trained vector ignored).

        Factor models return ``[b_u, p_u...]`` (bias first, 0 when unbiased;
        SVD++ includes the implicit-feedback term in ``p_u``), BaselineOnly
        ``[b_u]``; the neighbourhood models (KNNBaseline, SlopeOne) read the
        history on every call and return ``None``. ``None`` too when no history
        item is known to the model.
        """
        state = self._state(artifact, history, use_trained=False)
        if state is None:
            return None
        return self._subject_vector(state)

    def item_similarity(self, artifact: Artifact, item: int, others: np.ndarray) -> np.ndarray:
        """Similarity of inner item ``item`` to inner items ``others``."""
        raise CannotRecommend(f"{type(self).__name__} has no item similarity")

    def similar(
        self, artifact: Artifact, item_id: ItemId, k: int, exclude: Iterable[ItemId] = ()
    ) -> Scored:
        """Items most similar to ``item_id`` (cosine of item factors, or kNN similarity).

        Raises:
            CannotRecommend: the item is unknown, or the model has no item similarity.
        """
        item = _lookup(artifact.index_of("item_ids"), item_id)
        if item is None:
            raise CannotRecommend(f"{type(self).__name__}: unknown item {item_id!r}")
        n_items = len(artifact["item_ids"])
        scores = np.array(
            self.item_similarity(artifact, item, np.arange(n_items)), dtype=np.float64
        )
        scores[item] = -np.inf
        excluded = self._item_indices(artifact, exclude)
        scores[excluded[excluded >= 0]] = -np.inf
        best = top_k(scores, k)
        return list(zip(artifact["item_ids"][best].tolist(), scores[best].tolist(), strict=True))

    def explain(self, artifact: Artifact, history: History, item_id: ItemId) -> ItemId | None:
        """The history item most similar to ``item_id`` under the model's item similarity."""
        item = _lookup(artifact.index_of("item_ids"), item_id)
        if item is None:
            return None
        idx = self._item_indices(artifact, history.item_ids)
        idx = _unique_in_order(idx[(idx >= 0) & (idx != item)])
        if len(idx) == 0:
            return None
        try:
            sims = np.asarray(self.item_similarity(artifact, item, idx))
        except CannotRecommend:
            return None
        return artifact["item_ids"][idx[int(np.argmax(sims))]].item()


# --------------------------------------------------------------- factor models
class _FactorModel(SurpriseStrategy):
    """SVD, SVD++ and NMF: ``mu + b_u + b_i + q_i . p_u`` (biases optional)."""

    #: Whether folded-in factors are constrained to be >= 0 (NMF).
    non_negative: ClassVar[bool] = False

    def _biased(self) -> bool:
        return bool(getattr(self.options, "biased", True))

    def _extract(self, algo: Any, artifact: Artifact) -> None:
        artifact.arrays["pu"] = np.asarray(algo.pu, dtype=np.float64)
        artifact.arrays["qi"] = np.asarray(algo.qi, dtype=np.float64)
        if self._biased():
            artifact.arrays["bu"] = np.asarray(algo.bu, dtype=np.float64)
            artifact.arrays["bi"] = np.asarray(algo.bi, dtype=np.float64)

    def _implicit(self, artifact: Artifact, items: np.ndarray) -> np.ndarray | None:
        return None

    def _trained_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState:
        assert subject.row is not None
        vector = np.array(artifact["pu"][subject.row], dtype=np.float64)
        implicit = self._implicit(artifact, subject.items)
        if implicit is not None:
            vector += implicit
        subject.vector = vector
        subject.bu = float(artifact["bu"][subject.row]) if "bu" in artifact else 0.0
        return subject

    def _folded_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState | None:
        """Regularised least squares for ``[b_u, p_u]`` with the item side fixed."""
        qi = artifact["qi"][subject.items]
        target = np.asarray(subject.ratings, dtype=np.float64).copy()
        biased = "bu" in artifact
        implicit = self._implicit(artifact, subject.seen)
        if biased:
            target -= self._mu(artifact) + artifact["bi"][subject.items]
        if implicit is not None:
            target -= qi @ implicit
        design = np.hstack([np.ones((len(target), 1)), qi]) if biased else qi
        reg = float(self.options.fold_in_reg)
        if self.non_negative:
            solution = self._nnls(design, target, reg, biased)
        else:
            gram = design.T @ design + reg * np.eye(design.shape[1])
            try:  # positive definite when reg > 0: a Cholesky-speed solve
                solution = np.linalg.solve(gram, design.T @ target)
            except np.linalg.LinAlgError:  # reg == 0 and too few ratings: minimum norm
                solution = np.linalg.lstsq(gram, design.T @ target, rcond=None)[0]
        if biased:
            subject.bu, vector = float(solution[0]), solution[1:]
        else:
            subject.bu, vector = 0.0, solution
        subject.vector = vector + implicit if implicit is not None else vector
        return subject

    @staticmethod
    def _nnls(design: np.ndarray, target: np.ndarray, reg: float, biased: bool) -> np.ndarray:
        # Ridge as extra rows; the free bias as the difference of two >= 0 columns.
        if biased:
            design = np.hstack([design[:, :1], -design[:, :1], design[:, 1:]])
        n = design.shape[1]
        stacked = np.vstack([design, np.sqrt(reg) * np.eye(n)])
        solution, _ = nnls(stacked, np.concatenate([target, np.zeros(n)]))
        if biased:
            return np.concatenate([[solution[0] - solution[1]], solution[2:]])
        return solution

    def _subject_vector(self, subject: SubjectState) -> np.ndarray | None:
        assert subject.vector is not None
        return np.concatenate([[subject.bu], subject.vector])

    def _scores(
        self, artifact: Artifact, subject: SubjectState, items: np.ndarray | None
    ) -> np.ndarray:
        qi = artifact["qi"] if items is None else artifact["qi"][items]
        scores = qi @ subject.vector
        if "bu" in artifact:
            bi = artifact["bi"] if items is None else artifact["bi"][items]
            scores = scores + (self._mu(artifact) + subject.bu) + bi
        return scores

    def _unit_factors(self, artifact: Artifact) -> np.ndarray:
        if "unit_qi" not in artifact.cache:
            qi = artifact["qi"]
            norms = np.linalg.norm(qi, axis=1, keepdims=True)
            artifact.cache["unit_qi"] = qi / np.maximum(norms, 1e-12)
        return artifact.cache["unit_qi"]

    def item_similarity(self, artifact: Artifact, item: int, others: np.ndarray) -> np.ndarray:
        """Cosine similarity of item factors."""
        unit = self._unit_factors(artifact)
        return unit[others] @ unit[item]


class SVD(_FactorModel):
    """Surprise's ``SVD``: biased matrix factorisation by SGD (Funk SVD)."""

    name = "svd"
    algo_name = "SVD"
    options_class: ClassVar[type[RatingOptions]] = SVDOptions


class NMF(_FactorModel):
    """Surprise's ``NMF``: non-negative matrix factorisation (folded-in factors stay >= 0)."""

    name = "nmf"
    algo_name = "NMF"
    options_class: ClassVar[type[RatingOptions]] = NMFOptions
    non_negative = True


class SVDpp(_FactorModel):
    """Surprise's ``SVDpp``: SVD plus implicit feedback from which items were rated."""

    name = "svdpp"
    algo_name = "SVDpp"
    options_class: ClassVar[type[RatingOptions]] = SVDppOptions

    def _biased(self) -> bool:
        return True

    def _extract(self, algo: Any, artifact: Artifact) -> None:
        super()._extract(algo, artifact)
        artifact.arrays["yj"] = np.asarray(algo.yj, dtype=np.float64)

    def _implicit(self, artifact: Artifact, items: np.ndarray) -> np.ndarray | None:
        if len(items) == 0:
            return np.zeros(artifact["yj"].shape[1])
        return artifact["yj"][items].sum(axis=0) / np.sqrt(len(items))


# --------------------------------------------------------------- baselines
def _fold_in_bias(artifact: Artifact, subject: SubjectState, reg_u: float) -> float:
    """The ALS user-bias step of Surprise's baselines, for one subject."""
    residual = subject.ratings - (artifact["global_mean"][0] + artifact["bi"][subject.items])
    return float(residual.sum() / (reg_u + len(subject.items)))


class BaselineOnly(SurpriseStrategy):
    """Surprise's ``BaselineOnly``: ``mu + b_u + b_i``."""

    name = "baseline_only"
    algo_name = "BaselineOnly"
    options_class: ClassVar[type[RatingOptions]] = BaselineOnlyOptions

    def make_algo(self) -> Any:
        return surprise.BaselineOnly(verbose=False, **self.options.algo_kwargs())

    def _extract(self, algo: Any, artifact: Artifact) -> None:
        artifact.arrays["bu"] = np.asarray(algo.bu, dtype=np.float64)
        artifact.arrays["bi"] = np.asarray(algo.bi, dtype=np.float64)

    def _trained_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState:
        assert subject.row is not None
        subject.bu = float(artifact["bu"][subject.row])
        return subject

    def _folded_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState | None:
        subject.bu = _fold_in_bias(
            artifact, subject, float(self.options.bsl_options.get("reg_u", 15))
        )
        return subject

    def _subject_vector(self, subject: SubjectState) -> np.ndarray | None:
        return np.asarray([subject.bu])

    def _scores(
        self, artifact: Artifact, subject: SubjectState, items: np.ndarray | None
    ) -> np.ndarray:
        bi = artifact["bi"] if items is None else artifact["bi"][items]
        return (self._mu(artifact) + subject.bu) + bi


class KNNBaseline(BaselineOnly):
    """Surprise's ``KNNBaseline``: baselines plus a k-nearest-neighbour correction.

    The dense similarity matrix is stored in the artifact (float64, ``rows**2
    * 8`` bytes: 7 MB for MovieLens-100k's 943 users, 800 MB at the default
    ``max_matrix_rows`` of 10,000). A subject unknown at training time is
    folded in: its bias by Surprise's ALS step and, when user-based, its
    similarity to every trained user by the configured measure.
    """

    name = "knn_baseline"
    algo_name = "KNNBaseline"
    options_class: ClassVar[type[RatingOptions]] = KNNBaselineOptions

    def make_algo(self) -> Any:
        return surprise.KNNBaseline(**self.options.algo_kwargs())

    def max_items(self) -> int | None:
        """``max_matrix_rows`` when item-based (system check E020); a user-based model has none."""
        return None if self.options.user_based else self.options.max_matrix_rows

    def _check_size(self, data: RatingData) -> None:
        rows = data.n_users if self.options.user_based else data.n_items
        if rows > self.options.max_matrix_rows:
            what = "users" if self.options.user_based else "items"
            raise CannotTrain(
                f"max_matrix_rows: KNNBaseline would build a {rows:,} x {rows:,} similarity "
                f"matrix ({rows:,} {what}, {rows * rows * 8 / 1e9:.1f} GB) but max_matrix_rows "
                f"is {self.options.max_matrix_rows:,}."
            )

    def _fit_algo(self, algo: Any, data: RatingData) -> None:
        try:
            super()._fit_algo(algo, data)
        except ZeroDivisionError as exc:
            name = str(self.options.sim_options.get("name", "msd")).lower()
            if name != "pearson_baseline":
                raise
            # Surprise divides by the residuals' norms without a zero check
            # (its plain pearson has one); a correlation of constant residuals
            # is undefined, so this model cannot be trained on these ratings.
            if np.ptp(data.ratings) == 0:
                why = (f"every training rating is {data.ratings[0]:g} (implicit data where "
                       "each interaction weighs the same, such as view-only events)")
            else:
                why = ("the shared ratings of some pair of "
                       f"{'users' if self.options.user_based else 'items'} all equal their "
                       "baselines")
            raise CannotTrain(
                "KNNBaseline: the pearson_baseline similarity is undefined on these ratings: "
                f"{why}, and Surprise divides by zero. Train it on explicit ratings, set "
                "sim_options name to 'pearson', 'msd' or 'cosine', or use the core item_knn "
                "strategy for implicit feedback."
            ) from exc

    def _extract(self, algo: Any, artifact: Artifact) -> None:
        super()._extract(algo, artifact)
        artifact.arrays["sim"] = np.asarray(algo.sim, dtype=np.float64)
        artifact.meta.update({
            "k": self.options.k, "min_k": self.options.min_k,
            "user_based": self.options.user_based,
            "similarity": str(self.options.sim_options.get("name", "msd")).lower(),
        })

    def _folded_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState | None:
        subject = super()._folded_subject(artifact, subject) or subject
        if self.options.user_based:
            subject.vector = self.similarity_to_users(artifact, subject)
        return subject

    def _subject_vector(self, subject: SubjectState) -> np.ndarray | None:
        return None

    # -- user-based fold-in: the similarity of a new rating row to every user
    def _user_matrix(self, artifact: Artifact) -> sp.csr_array:
        if "ur_matrix" not in artifact.cache:
            artifact.cache["ur_matrix"] = sp.csr_array(
                (artifact["ur.ratings"], artifact["ur.items"], artifact["ur.indptr"]),
                shape=(len(artifact["subject_ids"]), len(artifact["item_ids"])),
            )
        return artifact.cache["ur_matrix"]

    def similarity_to_users(self, artifact: Artifact, subject: SubjectState) -> np.ndarray:
        """Similarity of a folded-in subject to each trained user, as Surprise defines it."""
        sim_options = self.options.sim_options
        name = str(sim_options.get("name", "msd")).lower()
        min_support = int(sim_options.get("min_support", 1))
        matrix = self._user_matrix(artifact)
        n_items = matrix.shape[1]
        mine = np.zeros(n_items)
        mine[subject.items] = subject.ratings
        mask = np.zeros(n_items)
        mask[subject.items] = 1.0
        binary = matrix.copy()
        binary.data = np.ones_like(binary.data)
        freq = binary @ mask
        if name == "pearson_baseline":
            bi = artifact["bi"]
            mu = self._mu(artifact)
            bu = artifact["bu"]
            residual = matrix.copy()
            rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
            residual.data = matrix.data - (mu + bu[rows] + bi[matrix.indices])
            my_residual = np.zeros(n_items)
            my_residual[subject.items] = subject.ratings - (mu + subject.bu + bi[subject.items])
            prods = residual @ my_residual
            sq_mine = binary @ (my_residual**2)
            sq_theirs = (residual * residual) @ mask
            shrinkage = float(sim_options.get("shrinkage", 100))
            with np.errstate(divide="ignore", invalid="ignore"):
                sims = prods / np.sqrt(sq_mine * sq_theirs)
                sims *= (freq - 1) / (freq - 1 + shrinkage)
            min_support = max(2, min_support)
        elif name == "msd":
            sq_diff = (matrix * matrix) @ mask - 2 * (matrix @ mine) + binary @ (mine**2)
            with np.errstate(divide="ignore", invalid="ignore"):
                sims = 1.0 / (sq_diff / freq + 1.0)
        elif name == "cosine":
            prods = matrix @ mine
            with np.errstate(divide="ignore", invalid="ignore"):
                sims = prods / np.sqrt((binary @ (mine**2)) * ((matrix * matrix) @ mask))
        else:  # pearson
            prods = matrix @ mine
            sq_mine, sq_theirs = binary @ (mine**2), (matrix * matrix) @ mask
            s_mine, s_theirs = binary @ mine, matrix @ mask
            num = freq * prods - s_mine * s_theirs
            denum = np.sqrt((freq * sq_mine - s_mine**2) * (freq * sq_theirs - s_theirs**2))
            with np.errstate(divide="ignore", invalid="ignore"):
                sims = np.where(denum == 0, 0.0, num / denum)
        sims = np.nan_to_num(sims, nan=0.0, posinf=0.0, neginf=0.0)
        sims[freq < min_support] = 0.0
        return sims

    # -- scoring
    def _by_item(self, artifact: Artifact) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training ratings grouped by item, users ascending: (indptr, users, residuals)."""
        if "by_item" not in artifact.cache:
            items = artifact["ur.items"]
            users = np.repeat(
                np.arange(len(artifact["subject_ids"])), np.diff(artifact["ur.indptr"])
            )
            order = np.argsort(items, kind="stable")
            counts = np.bincount(items, minlength=len(artifact["item_ids"]))
            indptr = np.concatenate(([0], np.cumsum(counts)))
            users_sorted = users[order]
            baseline = (
                self._mu(artifact) + artifact["bu"][users_sorted] + artifact["bi"][items[order]]
            )
            residuals = artifact["ur.ratings"][order] - baseline
            artifact.cache["by_item"] = (indptr, users_sorted, residuals)
        return artifact.cache["by_item"]

    def _aggregate(
        self, sum_sim: np.ndarray, sum_ratings: np.ndarray, actual_k: np.ndarray
    ) -> np.ndarray:
        sum_ratings = np.where(actual_k < self.options.min_k, 0.0, sum_ratings)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sum_sim != 0, sum_ratings / sum_sim, 0.0)

    def _user_based_term(
        self, artifact: Artifact, sims: np.ndarray, items: np.ndarray
    ) -> np.ndarray:
        indptr, users, residuals = self._by_item(artifact)
        starts, ends = indptr[items], indptr[items + 1]
        counts = ends - starts
        # Gather the raters of each requested item, items in request order.
        local = np.repeat(np.arange(len(items)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        entries = np.repeat(starts, counts) + offsets
        s = sims[users[entries]]
        # Within each item: by similarity, descending, ties in rater order
        # (heapq.nlargest in Surprise), then keep the top k with sim > 0.
        order = np.lexsort((-s, local))
        rank = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
        s_sorted = s[order]
        keep = (rank < self.options.k) & (s_sorted > 0)
        owner = local[order][keep]
        weights = s_sorted[keep]
        n = len(items)
        sum_sim = np.bincount(owner, weights=weights, minlength=n)
        sum_ratings = np.bincount(owner, weights=weights * residuals[entries][order][keep],
                                  minlength=n)
        actual_k = np.bincount(owner, minlength=n)
        return self._aggregate(sum_sim, sum_ratings, actual_k)

    def _item_based_term(
        self, artifact: Artifact, subject: SubjectState, items: np.ndarray
    ) -> np.ndarray:
        sim = artifact["sim"]
        rated = subject.items
        residuals = subject.ratings - (
            self._mu(artifact) + subject.bu + artifact["bi"][rated]
        )
        k = self.options.k
        out = np.empty(len(items))
        for start in range(0, len(items), _CHUNK):
            block = sim[items[start:start + _CHUNK]][:, rated]
            res = np.broadcast_to(residuals, block.shape)
            if block.shape[1] > k:
                order = np.argsort(-block, axis=1, kind="stable")[:, :k]
                block = np.take_along_axis(block, order, axis=1)
                res = residuals[order]
            positive = block > 0
            weights = np.where(positive, block, 0.0)
            out[start:start + _CHUNK] = self._aggregate(
                weights.sum(axis=1), (weights * res).sum(axis=1), positive.sum(axis=1)
            )
        return out

    def _scores(
        self, artifact: Artifact, subject: SubjectState, items: np.ndarray | None
    ) -> np.ndarray:
        if items is None:
            items = np.arange(len(artifact["item_ids"]))
        base = super()._scores(artifact, subject, items)
        if self.options.user_based:
            sims = subject.vector if subject.row is None else artifact["sim"][subject.row]
            assert sims is not None
            return base + self._user_based_term(artifact, sims, items)
        return base + self._item_based_term(artifact, subject, items)

    def item_similarity(self, artifact: Artifact, item: int, others: np.ndarray) -> np.ndarray:
        """The learned item-item similarity (item-based models only)."""
        if self.options.user_based:
            raise CannotRecommend("KNNBaseline is user-based: it has no item similarity")
        return artifact["sim"][item, others]


class SlopeOne(SurpriseStrategy):
    """Surprise's ``SlopeOne``: user mean plus mean deviations to the items rated.

    Stores the dense deviation matrix (float64) and a co-rating mask (uint8):
    ``items**2 * 9`` bytes, 25 MB for MovieLens-100k's 1,682 films. Surprise
    computes deviations from integer-truncated ratings; they are copied as
    learned, so predictions match Surprise's.
    """

    name = "slope_one"
    algo_name = "SlopeOne"
    options_class: ClassVar[type[RatingOptions]] = SlopeOneOptions

    def max_items(self) -> int | None:
        """``max_matrix_rows``: the deviation matrix has a row per item (system check E020)."""
        return self.options.max_matrix_rows

    def _check_size(self, data: RatingData) -> None:
        if data.n_items > self.options.max_matrix_rows:
            raise CannotTrain(
                f"max_matrix_rows: SlopeOne would build a {data.n_items:,} x {data.n_items:,} "
                f"deviation matrix ({data.n_items**2 * 9 / 1e9:.1f} GB) but max_matrix_rows is "
                f"{self.options.max_matrix_rows:,}."
            )

    def _extract(self, algo: Any, artifact: Artifact) -> None:
        co = np.asarray(algo.freq) > 0
        artifact.arrays["dev"] = np.where(co, np.asarray(algo.dev, dtype=np.float64), 0.0)
        artifact.arrays["co"] = co.astype(np.uint8)
        artifact.arrays["user_mean"] = np.asarray(algo.user_mean, dtype=np.float64)

    def _trained_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState:
        assert subject.row is not None
        subject.vector = np.asarray([artifact["user_mean"][subject.row]])
        return subject

    def _folded_subject(self, artifact: Artifact, subject: SubjectState) -> SubjectState | None:
        subject.vector = np.asarray([float(np.mean(subject.ratings))])
        return subject

    def _scores(
        self, artifact: Artifact, subject: SubjectState, items: np.ndarray | None
    ) -> np.ndarray:
        if items is None:
            items = np.arange(len(artifact["item_ids"]))
        assert subject.vector is not None
        dev, co = artifact["dev"], artifact["co"]
        rated = subject.items
        out = np.empty(len(items))
        for start in range(0, len(items), _CHUNK):
            block = items[start:start + _CHUNK]
            mask = co[block][:, rated]
            count = mask.sum(axis=1)
            total = (dev[block][:, rated] * mask).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[start:start + _CHUNK] = np.where(count > 0, total / count, 0.0)
        return subject.vector[0] + out


STRATEGIES: tuple[type[SurpriseStrategy], ...] = (
    SVD, SVDpp, NMF, KNNBaseline, SlopeOne, BaselineOnly,
)
