"""Recommender strategies: the plugin contract and its types, the registry, the built-in ones.

What a plugin author imports comes from here::

    from personalize.strategies import Artifact, Dataset, History, Options, Strategy
"""

from personalize.dataset import Dataset
from personalize.strategies.artifacts import Artifact, ArtifactFormatError
from personalize.strategies.base import CannotRecommend, Options, Scored, Strategy
from personalize.strategies.history import History, ItemId
from personalize.strategies.progress import report_progress
from personalize.strategies.ranking import top_k, top_k_rows

__all__ = [
    "Artifact",
    "ArtifactFormatError",
    "CannotRecommend",
    "Dataset",
    "History",
    "ItemId",
    "Options",
    "Scored",
    "Strategy",
    "report_progress",
    "top_k",
    "top_k_rows",
]
