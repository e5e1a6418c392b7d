"""Sentence-transformers content strategies for django-personalize.

Published under the ``personalize.strategies`` entry-point group as ``embeddings``.
Importing this package does not import torch: the model loads on first use.
"""

from personalize_embeddings.embedding import (
    ItemEmbeddings,
    ItemText,
    drop_items,
    embed_and_upsert,
    embed_items,
)
from personalize_embeddings.strategy import Embeddings, EmbeddingsOptions

__all__ = [
    "Embeddings",
    "EmbeddingsOptions",
    "ItemEmbeddings",
    "ItemText",
    "drop_items",
    "embed_and_upsert",
    "embed_items",
]
