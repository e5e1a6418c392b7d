"""Hybrids: strategies built from other configured strategies.

``Blend``
    A weighted sum of min-max normalised scores: each part proposes its
    ``candidates`` best items, the union is scored by every part (exactly,
    through ``score_items`` when the part has it, else from its own list), each
    part's scores are scaled to [0, 1] over the union, and the weighted sum
    ranks them. A part that cannot answer (``CannotRecommend``) is skipped, so
    a blend of EASE and popularity still answers an empty history.
``Cascade``
    One strategy proposes ``pool`` candidates, another re-ranks them. When the
    ranker cannot answer (an empty history), the candidate order is kept.

Both name their parts by their names in ``PERSONALIZE["STRATEGIES"]``::

    PERSONALIZE = {"STRATEGIES": {
        ...,
        "ease_pop": ("personalize.strategies.hybrid.Blend",
                     {"strategies": {"ease": 0.8, "popular": 0.2}}),
        "knn_then_ease": ("personalize.strategies.hybrid.Cascade",
                          {"candidates": "item_knn", "ranker": "ease", "pool": 100}),
    }}

Artifact layout (``artifact_version`` 1): every array of part ``name`` is
stored as ``"<name>/<array>"``; ``meta["parts"][name]`` holds that part's own
metadata (its class path, artifact version and options), so a hybrid artifact
is self-contained: it is served with the classes and options it was trained
with, even if the settings changed since. ``meta["layout"]`` is ``"prefixed"``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from django.utils.module_loading import import_string

from personalize.dataset import Dataset
from personalize.strategies.artifacts import Artifact, ArtifactFormatError
from personalize.strategies.base import CannotRecommend, Options, Scored, Strategy
from personalize.strategies.common import (
    VectorStrategy,
    mask_columns,
    parse_exclude,
    positions,
    ranked,
)
from personalize.strategies.history import History
from personalize.strategies.ranking import top_k
from personalize.strategies.registry import (
    StrategyConfigError,
    configured_strategy_specs,
    get_strategy,
)

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

#: The separator between a part's name and its array names in the artifact.
SEPARATOR = "/"

#: Hybrids being fitted in this context, to refuse a hybrid that contains itself.
_fitting: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
    "personalize_hybrid_fitting", default=()
)


def pack_parts(parts: dict[str, Artifact]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays prefixed by part name, and each part's metadata by name."""
    arrays: dict[str, np.ndarray] = {}
    metas: dict[str, Any] = {}
    for name, artifact in parts.items():
        if SEPARATOR in name:
            raise ValueError(f"A hybrid part name may not contain {SEPARATOR!r}: {name!r}")
        for key, array in artifact.arrays.items():
            arrays[f"{name}{SEPARATOR}{key}"] = array
        metas[name] = dict(artifact.meta)
    return arrays, metas


def unpack_part(artifact: Artifact, name: str) -> tuple[Strategy, Artifact]:
    """The strategy and artifact of part ``name`` (built once, cached on the artifact)."""
    cache = artifact.cache.setdefault("parts", {})
    if name not in cache:
        meta = artifact.meta.get("parts", {}).get(name)
        if meta is None:
            raise ArtifactFormatError(f"The hybrid artifact has no part {name!r}.")
        prefix = f"{name}{SEPARATOR}"
        sub = Artifact(
            arrays={k[len(prefix):]: v for k, v in artifact.arrays.items() if k.startswith(prefix)},
            meta=dict(meta),
        )
        try:
            cls = import_string(meta["strategy"])
        except (ImportError, KeyError) as exc:
            raise ArtifactFormatError(
                f"Hybrid part {name!r}: cannot import its strategy {meta.get('strategy')!r}."
            ) from exc
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise ArtifactFormatError(
                f"Hybrid part {name!r}: {meta['strategy']!r} is not a Strategy."
            )
        cache[name] = (cls(**meta.get("options", {})), sub)
    return cache[name]


def _minmax(scores: np.ndarray) -> np.ndarray:
    """Scale the finite scores to [0, 1]; missing (NaN) scores become 0."""
    out = np.zeros(scores.shape, dtype=np.float64)
    finite = np.isfinite(scores)
    values = scores[finite]  # selected once: a block's scores pass here per part
    if values.size == 0:
        return out
    low, high = values.min(), values.max()
    out[finite] = 1.0 if high == low else (values - low) / (high - low)
    return out


def _scores_for(strategy: Strategy, artifact: Artifact, history: History,
                candidates: np.ndarray, listed: Scored) -> np.ndarray:
    """The part's score for every candidate: exact when it can, else from its list."""
    try:
        exact = strategy.score_items(artifact, history, candidates.tolist())
    except CannotRecommend:
        exact = None
    if exact is not None:
        return np.asarray(exact, dtype=np.float64)
    scores = np.full(len(candidates), np.nan)
    if listed:
        ids, values = _as_arrays(listed)
        where = np.minimum(np.searchsorted(candidates, ids), len(candidates) - 1)
        known = candidates[where] == ids
        scores[where[known]] = values[known]
    return scores


def _as_arrays(listed: Scored) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray([item for item, _ in listed])
    return ids, np.asarray([score for _, score in listed], dtype=np.float64)


class HybridStrategy(Strategy):
    """What Blend and Cascade share: fitting and packing their parts."""

    artifact_version: ClassVar[int] = 1

    def part_names(self) -> list[str]:
        raise NotImplementedError

    def explain(self, artifact: Artifact, history: History, item_id: Any) -> Any:
        """The first part's answer: a hybrid recommends what its parts support."""
        for name in self.part_names():
            strategy, part = unpack_part(artifact, name)
            reason = strategy.explain(part, history, item_id)
            if reason is not None:
                return reason
        return None

    def explain_many(
        self, artifact: Artifact, history: History, item_ids: Sequence[Any]
    ) -> list[Any]:
        """:meth:`explain` of every item: each part answers, in one call, what is still open."""
        if type(self).explain is not HybridStrategy.explain:  # a subclass's own explain rules
            return super().explain_many(artifact, history, item_ids)
        answers: list[Any] = [None] * len(item_ids)
        open_slots = list(range(len(item_ids)))
        for name in self.part_names():
            if not open_slots:
                break
            strategy, part = unpack_part(artifact, name)
            reasons = strategy.explain_many(part, history, [item_ids[i] for i in open_slots])
            for slot, reason in zip(open_slots, reasons, strict=True):
                answers[slot] = reason
            open_slots = [slot for slot in open_slots if answers[slot] is None]
        return answers

    def forget_subjects(self, artifact: Artifact, subject_ids: Iterable[Any]) -> int:
        """Each part forgets the subjects in its own way; returns the rows forgotten in all."""
        wanted = list(subject_ids)
        forgotten = 0
        for name in artifact.meta.get("parts", {}):
            strategy, part = unpack_part(artifact, name)
            forgotten += strategy.forget_subjects(part, wanted)
            prefix = f"{name}{SEPARATOR}"
            for key, array in part.arrays.items():  # written back: a copy of the part reads them
                artifact.arrays[f"{prefix}{key}"] = array
        return forgotten

    def fit(self, dataset: Dataset) -> Artifact:
        """Fit every part on the same snapshot and pack their artifacts."""
        stack = _fitting.get()
        if id(self) in stack:
            raise ValueError(f"{type(self).__name__} contains itself; check its part names.")
        token = _fitting.set((*stack, id(self)))
        try:
            parts = {name: get_strategy(name).fit(dataset) for name in self.part_names()}
        finally:
            _fitting.reset(token)
        arrays, metas = pack_parts(parts)
        return self.new_artifact(arrays, parts=metas, layout="prefixed")

    def check(self) -> list[CheckMessage]:
        """personalize.E021: a part is not a configured strategy, or a hybrid contains itself."""
        from django.core.checks import Error

        try:
            specs = configured_strategy_specs()
        except StrategyConfigError:
            return []  # reported as personalize.E002
        errors: list[CheckMessage] = []
        for name in self.part_names():
            if name not in specs:
                errors.append(Error(
                    f"{type(self).__name__} names {name!r}, which is not a configured strategy.",
                    hint=f"Use one of: {', '.join(sorted(specs))}.",
                    obj="PERSONALIZE['STRATEGIES']", id="personalize.E021",
                ))
        if not errors and self._contains_itself(specs):
            errors.append(Error(
                f"{type(self).__name__} {self.options.as_dict()} contains itself "
                "through its parts.",
                hint="A hybrid may not name itself, directly or through another hybrid.",
                obj="PERSONALIZE['STRATEGIES']", id="personalize.E021",
            ))
        return errors

    def _contains_itself(self, specs: dict[str, Any]) -> bool:
        mine = (type(self), self.options.as_dict())
        seen: set[str] = set()
        todo = list(self.part_names())
        while todo:
            name = todo.pop()
            if name in seen or name not in specs:
                continue
            seen.add(name)
            try:
                part = specs[name].build()
            except (TypeError, ValueError, ImportError, StrategyConfigError):
                continue  # an invalid part is reported as personalize.E002
            if (type(part), part.options.as_dict()) == mine:
                return True
            if isinstance(part, HybridStrategy):
                todo.extend(part.part_names())
        return False


@dataclass(frozen=True)
class BlendOptions(Options):
    """Options of :class:`Blend`.

    Attributes:
        strategies: configured strategy name -> weight (weights >= 0, not all 0).
        candidates: how many items each part proposes (at least ``k``).
    """

    strategies: dict[str, float] = field(default_factory=dict)
    candidates: int = 100

    def validate(self) -> None:
        if not isinstance(self.strategies, dict) or not self.strategies:
            raise ValueError("strategies must name at least one strategy with its weight")
        for name, weight in self.strategies.items():
            if not isinstance(weight, int | float) or weight < 0:
                raise ValueError(f"strategies[{name!r}] must be a weight >= 0, got {weight!r}")
        if not any(self.strategies.values()):
            raise ValueError("strategies must have at least one positive weight")
        if not isinstance(self.candidates, int) or self.candidates < 1:
            raise ValueError(f"candidates must be a positive integer, got {self.candidates!r}")


class Blend(HybridStrategy):
    """A weighted blend of several strategies' normalised scores."""

    name = "blend"
    options_class = BlendOptions
    options: BlendOptions

    def part_names(self) -> list[str]:
        return list(self.options.strategies)

    def recommend(
        self, artifact: Artifact, history: History, k: int, exclude: Iterable[Any] = ()
    ) -> Scored:
        """The ``k`` best items by the weighted sum of the parts' normalised scores."""
        self.check_artifact(artifact)
        if k <= 0:
            return []
        names = [name for name, weight in self.options.strategies.items() if weight]
        answered, candidates, scores = normalised_part_scores(
            artifact, history, names, max(self.options.candidates, k), exclude
        )
        if not candidates.size:
            return []
        total = np.zeros(len(candidates))
        for row, name in enumerate(answered):
            total += self.options.strategies[name] * scores[row]
        best = top_k(total, k)
        return list(zip(candidates[best].tolist(), total[best].tolist(), strict=True))


def normalised_part_scores(
    artifact: Artifact, history: History, names: Sequence[str], pool: int,
    exclude: Iterable[Any] = (), extra: Sequence[Any] = (),
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """What a blend of parts ``names`` ranks: each answering part's normalised scores.

    Each part proposes its ``pool`` best items; the union (with ``extra`` ids,
    which :meth:`Gated.explain` asks about) is scored by every part that
    answered and min-max normalised per part.

    Returns:
        The names of the parts that answered, the sorted candidate ids, and a
        ``(len(answered), len(candidates))`` array of normalised scores (0
        where a part has no score).

    Raises:
        CannotRecommend: no part can recommend for this history.
    """
    exclude = parse_exclude(exclude)
    answered: list[tuple[str, Strategy, Artifact, Scored, np.ndarray | None]] = []
    for name in names:
        strategy, part = unpack_part(artifact, name)
        try:
            if isinstance(strategy, VectorStrategy):
                # one score vector serves both the proposal and the blending
                strategy.check_artifact(part)
                vector = strategy.item_scores(part, history)
                masked = vector.copy()
                mask_columns(masked, part, history, exclude)
                answered.append((name, strategy, part, ranked(part, masked, pool), vector))
            else:
                scored = strategy.recommend(part, history, pool, exclude)
                answered.append((name, strategy, part, scored, None))
        except CannotRecommend:
            continue
    if not answered:
        raise CannotRecommend("No part of the blend can recommend for this history.")
    listed = [pair for *_, scored, _ in answered for pair in scored]
    if not listed and not extra:
        return [name for name, *_ in answered], np.asarray([]), np.zeros((len(answered), 0))
    ids = _as_arrays(listed)[0] if listed else np.asarray(list(extra))
    if extra and listed:
        ids = np.concatenate([ids, np.asarray(list(extra))])  # promoted: no id is cut short
    candidates = np.unique(ids)
    scores = np.zeros((len(answered), len(candidates)))
    for row, (_, strategy, part, scored, full) in enumerate(answered):
        if full is not None:
            columns, found = positions(part, candidates.tolist())
            part_scores = np.full(len(candidates), np.nan)
            part_scores[found] = full[columns]
        else:
            part_scores = _scores_for(strategy, part, history, candidates, scored)
        scores[row] = _minmax(part_scores)
    return [name for name, *_ in answered], candidates, scores


@dataclass(frozen=True)
class CascadeOptions(Options):
    """Options of :class:`Cascade`.

    Attributes:
        candidates: the configured strategy that proposes items.
        ranker: the configured strategy that re-ranks them.
        pool: how many candidates are proposed (at least ``k``).
    """

    candidates: str = ""
    ranker: str = ""
    pool: int = 100

    def validate(self) -> None:
        if not self.candidates or not isinstance(self.candidates, str):
            raise ValueError("candidates must name a configured strategy")
        if not self.ranker or not isinstance(self.ranker, str):
            raise ValueError("ranker must name a configured strategy")
        if self.candidates == self.ranker:
            raise ValueError("candidates and ranker must be different strategies")
        if not isinstance(self.pool, int) or self.pool < 1:
            raise ValueError(f"pool must be a positive integer, got {self.pool!r}")


class Cascade(HybridStrategy):
    """Candidates from one strategy, re-ranked by another."""

    name = "cascade"
    options_class = CascadeOptions
    options: CascadeOptions

    def part_names(self) -> list[str]:
        return [self.options.candidates, self.options.ranker]

    def recommend(
        self, artifact: Artifact, history: History, k: int, exclude: Iterable[Any] = ()
    ) -> Scored:
        """The ranker's order over the candidate strategy's ``pool`` best items.

        Scores are for ordering only: ``1 + normalised ranker score`` for the
        candidates the ranker scores, the normalised candidate score (below 1)
        for the rest, which follow in candidate order.
        """
        self.check_artifact(artifact)
        if k <= 0:
            return []
        exclude = parse_exclude(exclude)
        generator, generator_artifact = unpack_part(artifact, self.options.candidates)
        proposed = generator.recommend(
            generator_artifact, history, max(self.options.pool, k), exclude
        )
        if not proposed:
            return []
        ids, candidate_scores = _as_arrays(proposed)
        ranker, ranker_artifact = unpack_part(artifact, self.options.ranker)
        order = np.argsort(ids, kind="stable")
        try:
            ranked_scores = np.full(len(ids), np.nan)
            ranked_scores[order] = _scores_for(
                ranker, ranker_artifact, history, ids[order],
                self._ranker_list(ranker, ranker_artifact, history, exclude, len(ids)),
            )
        except CannotRecommend:
            ranked_scores = np.full(len(ids), np.nan)
        scored = np.isfinite(ranked_scores)
        final = np.where(scored, 1.0 + _minmax(ranked_scores),
                         0.999 * _minmax(candidate_scores))
        best = top_k(final, k)
        return list(zip(ids[best].tolist(), final[best].tolist(), strict=True))

    @staticmethod
    def _ranker_list(ranker: Strategy, artifact: Artifact, history: History,
                     exclude: list[Any], n: int) -> Scored:
        """The ranker's own list, used only when it cannot score given items."""
        if ranker.implements("score_items"):
            return []
        return ranker.recommend(artifact, history, max(20 * n, 1000), exclude)
