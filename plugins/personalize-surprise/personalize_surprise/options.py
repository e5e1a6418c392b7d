"""Typed options for the Surprise strategies.

Every Surprise constructor argument that changes what is learned is exposed
with Surprise's own default, plus a few options of the plugin itself
(:class:`RatingOptions`). ``random_state`` defaults to ``0`` rather than
Surprise's ``None`` so that a retrain on the same snapshot gives the same model;
set it to ``None`` for a fresh seed on every fit.

``validate()`` raises a ``ValueError`` whose message starts with the option's
name, so the system check (personalize.E002) points at the culprit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from personalize.strategies import Options

SIMILARITY_NAMES = ("msd", "cosine", "pearson", "pearson_baseline")
SIM_OPTION_KEYS = frozenset({"name", "user_based", "min_support", "shrinkage"})
BASELINE_METHODS = ("als", "sgd")
BSL_OPTION_KEYS = frozenset({"method", "n_epochs", "reg_u", "reg_i", "reg", "learning_rate"})


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _non_negative(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}.")


def _positive(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}.")


def _seed(value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"random_state must be None or an integer >= 0, got {value!r}.")


def validate_bsl_options(bsl: Any, name: str = "bsl_options") -> None:
    """Check a Surprise ``bsl_options`` dict (baseline estimation)."""
    if not isinstance(bsl, dict):
        raise ValueError(f"{name} must be a dict, got {bsl!r}.")
    unknown = sorted(set(bsl) - BSL_OPTION_KEYS)
    if unknown:
        raise ValueError(
            f"{name} has unknown key {unknown[0]!r}; "
            f"valid keys: {', '.join(sorted(BSL_OPTION_KEYS))}."
        )
    method = bsl.get("method", "als")
    if method not in BASELINE_METHODS:
        raise ValueError(f"{name}['method'] must be 'als' or 'sgd', got {method!r}.")
    if "n_epochs" in bsl:
        _positive_int(f"{name}['n_epochs']", bsl["n_epochs"])
    for key in ("reg_u", "reg_i", "reg"):
        if key in bsl:
            _non_negative(f"{name}[{key!r}]", bsl[key])
    if "learning_rate" in bsl:
        _positive(f"{name}['learning_rate']", bsl["learning_rate"])


def validate_sim_options(sim: Any, name: str = "sim_options") -> None:
    """Check a Surprise ``sim_options`` dict (similarity measure)."""
    if not isinstance(sim, dict):
        raise ValueError(f"{name} must be a dict, got {sim!r}.")
    unknown = sorted(set(sim) - SIM_OPTION_KEYS)
    if unknown:
        raise ValueError(
            f"{name} has unknown key {unknown[0]!r}; "
            f"valid keys: {', '.join(sorted(SIM_OPTION_KEYS))}."
        )
    sim_name = str(sim.get("name", "msd")).lower()
    if sim_name not in SIMILARITY_NAMES:
        raise ValueError(
            f"{name}['name'] must be one of {', '.join(SIMILARITY_NAMES)}, got {sim.get('name')!r}."
        )
    if not isinstance(sim.get("user_based", True), bool):
        raise ValueError(f"{name}['user_based'] must be True or False, got {sim['user_based']!r}.")
    support = sim.get("min_support", 1)
    if isinstance(support, bool) or not isinstance(support, int) or support < 0:
        raise ValueError(f"{name}['min_support'] must be an integer >= 0, got {support!r}.")
    if "shrinkage" in sim:
        _non_negative(f"{name}['shrinkage']", sim["shrinkage"])


@dataclass(frozen=True)
class RatingOptions(Options):
    """Options every Surprise strategy has (the plugin's own, not Surprise's).

    Attributes:
        rating_scale: ``(low, high)`` of the ratings; predictions are clipped to
            it. ``None`` takes ``dataset.meta["rating_scale"]`` when the snapshot
            has one, else the lowest and highest rating seen in training.
        fold_in_reg: ridge penalty of the least-squares solve that computes a
            vector for a subject unknown at training time (item factors fixed).
        implicit_rating: the rating assumed for a history item that has no
            explicit rating, when a history has no rating at all (``None``: the
            top of the rating scale, i.e. an interaction counts as "liked").
    """

    rating_scale: tuple[float, float] | None = None
    fold_in_reg: float = 1.0
    implicit_rating: float | None = None

    def validate(self) -> None:
        if self.rating_scale is not None:
            scale = self.rating_scale
            if (
                not isinstance(scale, list | tuple) or len(scale) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale)
                or scale[0] >= scale[1]
            ):
                raise ValueError(
                    f"rating_scale must be None or (low, high) with low < high, got {scale!r}."
                )
        _non_negative("fold_in_reg", self.fold_in_reg)
        if self.implicit_rating is not None and (
            isinstance(self.implicit_rating, bool)
            or not isinstance(self.implicit_rating, int | float)
        ):
            raise ValueError(
                f"implicit_rating must be None or a number, got {self.implicit_rating!r}."
            )


@dataclass(frozen=True)
class SVDOptions(RatingOptions):
    """Surprise ``SVD`` (Funk matrix factorisation, biased by default)."""

    n_factors: int = 100
    n_epochs: int = 20
    biased: bool = True
    init_mean: float = 0.0
    init_std_dev: float = 0.1
    lr_all: float = 0.005
    reg_all: float = 0.02
    lr_bu: float | None = None
    lr_bi: float | None = None
    lr_pu: float | None = None
    lr_qi: float | None = None
    reg_bu: float | None = None
    reg_bi: float | None = None
    reg_pu: float | None = None
    reg_qi: float | None = None
    random_state: int | None = 0

    def validate(self) -> None:
        super().validate()
        _positive_int("n_factors", self.n_factors)
        _positive_int("n_epochs", self.n_epochs)
        if not isinstance(self.biased, bool):
            raise ValueError(f"biased must be True or False, got {self.biased!r}.")
        if isinstance(self.init_mean, bool) or not isinstance(self.init_mean, int | float):
            raise ValueError(f"init_mean must be a number, got {self.init_mean!r}.")
        _non_negative("init_std_dev", self.init_std_dev)
        _positive("lr_all", self.lr_all)
        _non_negative("reg_all", self.reg_all)
        for name in ("lr_bu", "lr_bi", "lr_pu", "lr_qi"):
            _positive(name, getattr(self, name), allow_none=True)
        for name in ("reg_bu", "reg_bi", "reg_pu", "reg_qi"):
            _non_negative(name, getattr(self, name), allow_none=True)
        _seed(self.random_state)

    def algo_kwargs(self) -> dict[str, Any]:
        names = ("n_factors", "n_epochs", "biased", "init_mean", "init_std_dev", "lr_all",
                 "reg_all", "lr_bu", "lr_bi", "lr_pu", "lr_qi", "reg_bu", "reg_bi", "reg_pu",
                 "reg_qi", "random_state")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class SVDppOptions(RatingOptions):
    """Surprise ``SVDpp`` (SVD with implicit feedback of what was rated)."""

    n_factors: int = 20
    n_epochs: int = 20
    init_mean: float = 0.0
    init_std_dev: float = 0.1
    lr_all: float = 0.007
    reg_all: float = 0.02
    lr_bu: float | None = None
    lr_bi: float | None = None
    lr_pu: float | None = None
    lr_qi: float | None = None
    lr_yj: float | None = None
    reg_bu: float | None = None
    reg_bi: float | None = None
    reg_pu: float | None = None
    reg_qi: float | None = None
    reg_yj: float | None = None
    cache_ratings: bool = False
    random_state: int | None = 0

    def validate(self) -> None:
        super().validate()
        _positive_int("n_factors", self.n_factors)
        _positive_int("n_epochs", self.n_epochs)
        if isinstance(self.init_mean, bool) or not isinstance(self.init_mean, int | float):
            raise ValueError(f"init_mean must be a number, got {self.init_mean!r}.")
        _non_negative("init_std_dev", self.init_std_dev)
        _positive("lr_all", self.lr_all)
        _non_negative("reg_all", self.reg_all)
        for name in ("lr_bu", "lr_bi", "lr_pu", "lr_qi", "lr_yj"):
            _positive(name, getattr(self, name), allow_none=True)
        for name in ("reg_bu", "reg_bi", "reg_pu", "reg_qi", "reg_yj"):
            _non_negative(name, getattr(self, name), allow_none=True)
        if not isinstance(self.cache_ratings, bool):
            raise ValueError(f"cache_ratings must be True or False, got {self.cache_ratings!r}.")
        _seed(self.random_state)

    def algo_kwargs(self) -> dict[str, Any]:
        names = ("n_factors", "n_epochs", "init_mean", "init_std_dev", "lr_all", "reg_all",
                 "lr_bu", "lr_bi", "lr_pu", "lr_qi", "lr_yj", "reg_bu", "reg_bi", "reg_pu",
                 "reg_qi", "reg_yj", "cache_ratings", "random_state")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class NMFOptions(RatingOptions):
    """Surprise ``NMF`` (non-negative factors, unbiased by default)."""

    n_factors: int = 15
    n_epochs: int = 50
    biased: bool = False
    reg_pu: float = 0.06
    reg_qi: float = 0.06
    reg_bu: float = 0.02
    reg_bi: float = 0.02
    lr_bu: float = 0.005
    lr_bi: float = 0.005
    init_low: float = 0.0
    init_high: float = 1.0
    random_state: int | None = 0

    def validate(self) -> None:
        super().validate()
        _positive_int("n_factors", self.n_factors)
        _positive_int("n_epochs", self.n_epochs)
        if not isinstance(self.biased, bool):
            raise ValueError(f"biased must be True or False, got {self.biased!r}.")
        for name in ("reg_pu", "reg_qi", "reg_bu", "reg_bi"):
            _non_negative(name, getattr(self, name))
        for name in ("lr_bu", "lr_bi"):
            _positive(name, getattr(self, name))
        _non_negative("init_low", self.init_low)
        _positive("init_high", self.init_high)
        if self.init_high <= self.init_low:
            raise ValueError(
                f"init_high must be greater than init_low ({self.init_low!r}), "
                f"got {self.init_high!r}."
            )
        _seed(self.random_state)

    def algo_kwargs(self) -> dict[str, Any]:
        names = ("n_factors", "n_epochs", "biased", "reg_pu", "reg_qi", "reg_bu", "reg_bi",
                 "lr_bu", "lr_bi", "init_low", "init_high", "random_state")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class BaselineOnlyOptions(RatingOptions):
    """Surprise ``BaselineOnly`` (global mean + user bias + item bias)."""

    bsl_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        super().validate()
        validate_bsl_options(self.bsl_options)

    def algo_kwargs(self) -> dict[str, Any]:
        return {"bsl_options": dict(self.bsl_options)}


@dataclass(frozen=True)
class KNNBaselineOptions(RatingOptions):
    """Surprise ``KNNBaseline`` (neighbourhood model on baseline residuals).

    Attributes:
        k: the most neighbours aggregated per prediction.
        min_k: fewer positive-similarity neighbours than this and the
            prediction is the baseline alone.
        sim_options: Surprise's similarity options (``name``: msd, cosine,
            pearson or pearson_baseline; ``user_based``; ``min_support``;
            ``shrinkage``).
        bsl_options: Surprise's baseline options (``method``: als or sgd, ...).
        max_matrix_rows: refuse to fit when the dense similarity matrix would
            have more rows than this (users when user-based, items otherwise):
            it takes ``rows**2 * 8`` bytes in memory and in the artifact.
    """

    k: int = 40
    min_k: int = 1
    sim_options: dict[str, Any] = field(default_factory=dict)
    bsl_options: dict[str, Any] = field(default_factory=dict)
    max_matrix_rows: int = 10_000

    def validate(self) -> None:
        super().validate()
        _positive_int("k", self.k)
        if isinstance(self.min_k, bool) or not isinstance(self.min_k, int) or self.min_k < 0:
            raise ValueError(f"min_k must be an integer >= 0, got {self.min_k!r}.")
        validate_sim_options(self.sim_options)
        validate_bsl_options(self.bsl_options)
        _positive_int("max_matrix_rows", self.max_matrix_rows)

    @property
    def user_based(self) -> bool:
        return bool(self.sim_options.get("user_based", True))

    def algo_kwargs(self) -> dict[str, Any]:
        return {"k": self.k, "min_k": self.min_k, "sim_options": dict(self.sim_options),
                "bsl_options": dict(self.bsl_options), "verbose": False}


@dataclass(frozen=True)
class SlopeOneOptions(RatingOptions):
    """Surprise ``SlopeOne`` (mean rating deviations between item pairs).

    Attributes:
        max_matrix_rows: refuse to fit above this many items: the deviation
            matrix takes ``items**2 * 9`` bytes (float64 deviations plus a
            one-byte co-rating mask).
    """

    max_matrix_rows: int = 10_000

    def validate(self) -> None:
        super().validate()
        _positive_int("max_matrix_rows", self.max_matrix_rows)

    def algo_kwargs(self) -> dict[str, Any]:
        return {}
