"""Recommender strategies: the plugin contract, the registry and the built-in ones."""

from personalize.strategies.base import CannotRecommend, History, Options, Scored, Strategy

__all__ = ["CannotRecommend", "History", "Options", "Scored", "Strategy"]
