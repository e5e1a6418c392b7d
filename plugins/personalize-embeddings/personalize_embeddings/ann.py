"""Optional approximate nearest-neighbour search with hnswlib.

hnswlib is an optional dependency (``pip install personalize-embeddings[ann]``;
it builds from source, so it needs a C++ compiler). The exact matrix-vector
product is the default and stays the fallback: a missing hnswlib never breaks
a page, it only costs speed (and shows as system check personalize.W020 when
``ann="hnsw"`` is configured).

The index is saved inside the artifact as raw bytes (``hnsw_index``, uint8)
written by hnswlib's own ``save_index``: no pickle.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile
from typing import Any

import numpy as np

ANN_CHOICES = ("exact", "hnsw", "auto")


class ANNUnavailable(RuntimeError):
    """``ann="hnsw"`` was asked for but hnswlib is not installed."""


def hnswlib_available() -> bool:
    return importlib.util.find_spec("hnswlib") is not None


def resolve_ann(choice: str, n_items: int, threshold: int) -> str:
    """``"exact"`` or ``"hnsw"`` for a catalog of ``n_items``.

    ``"auto"`` picks hnsw above ``threshold`` items when hnswlib is installed.

    Raises:
        ANNUnavailable: ``choice`` is ``"hnsw"`` and hnswlib is missing.
    """
    if choice == "hnsw":
        if not hnswlib_available():
            raise ANNUnavailable(
                "ann='hnsw' needs the hnswlib package, which is not installed. "
                "Install it with `pip install personalize-embeddings[ann]` (or "
                "`pip install hnswlib`), or set ann='exact'."
            )
        return "hnsw"
    if choice == "auto" and n_items > threshold and hnswlib_available():
        return "hnsw"
    return "exact"


def build_index(vectors: np.ndarray, rows: np.ndarray, *, m: int, ef_construction: int,
                seed: int = 100) -> np.ndarray:
    """An inner-product HNSW index over ``vectors[rows]``, labels = row numbers, as bytes."""
    hnswlib = importlib.import_module("hnswlib")
    index = hnswlib.Index(space="ip", dim=vectors.shape[1])
    index.init_index(max_elements=max(1, len(vectors)), ef_construction=ef_construction, M=m,
                     random_seed=seed)
    if len(rows):
        index.add_items(vectors[rows], rows)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.bin")
        index.save_index(path)
        with open(path, "rb") as handle:
            return np.frombuffer(handle.read(), dtype=np.uint8).copy()


def load_index(payload: np.ndarray, dim: int, n_items: int, ef: int) -> Any:
    """Load an index saved by :func:`build_index`."""
    hnswlib = importlib.import_module("hnswlib")
    index = hnswlib.Index(space="ip", dim=dim)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.bin")
        with open(path, "wb") as handle:
            handle.write(payload.tobytes())
        index.load_index(path, max_elements=max(1, n_items))
    index.set_ef(ef)
    return index


def query(index: Any, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, inner-product scores) of the ``k`` nearest items, best first."""
    k = min(k, index.get_current_count())
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    labels, distances = index.knn_query(vector.reshape(1, -1).astype(np.float32), k=k)
    return labels[0].astype(np.int64), (1.0 - distances[0]).astype(np.float32)
