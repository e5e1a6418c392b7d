"""Surprise rating models as django-personalize strategies.

Published under the ``personalize.strategies`` entry-point group as ``svd``,
``svdpp``, ``nmf``, ``knn_baseline``, ``slope_one`` and ``baseline_only``.
"""

from personalize_surprise.strategies import (
    NMF,
    SVD,
    BaselineOnly,
    KNNBaseline,
    SlopeOne,
    SurpriseStrategy,
    SVDpp,
)
from personalize_surprise.trainset import CannotTrain

__all__ = ["NMF", "SVD", "BaselineOnly", "CannotTrain", "KNNBaseline", "SVDpp", "SlopeOne",
           "SurpriseStrategy"]
