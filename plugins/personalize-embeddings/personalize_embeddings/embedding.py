"""Embedding services: item text in, L2-normalised float32 vectors out.

The text of an item is what the catalog put in ``Item.text`` (for the Amazon
data: "title. categories. brand."); items without text fall back to their
title and categories. Each embedded text is fingerprinted (the first 64 bits
of its SHA-256) so a later run re-embeds only items whose text changed: see
:func:`embed_items`. This fingerprint is of the embedded text alone, so a
price change in ``Item.attributes`` (which changes ``Item.content_hash``)
does not cost a re-embedding.

:func:`embed_and_upsert` is the hook for catalog changes: it adds or replaces
the vectors of new or edited items in a trained artifact, so a brand-new
product is recommendable (by content) before the next full training.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from personalize.strategies import Artifact, report_progress
from personalize_embeddings import model as model_module
from personalize_embeddings.model import DEFAULT_MODEL

#: Bumped when the artifact layout of the embeddings strategy changes.
ARTIFACT_VERSION = 1
#: Batches encoded between two progress reports (``report_progress``).
BATCHES_PER_REPORT = 16
#: What the progress reports call the encoding step.
PROGRESS_STEP = "embedding item texts"


@dataclass(frozen=True)
class ItemText:
    """One item's id and the text that represents it."""

    item_id: Any
    text: str


@dataclass
class ItemEmbeddings:
    """Vectors for a list of items, in the order given.

    Attributes:
        item_ids: the items' ids.
        vectors: ``(n, dim)`` float32; zero rows for items without text.
        text_hashes: uint64 fingerprint of each embedded text (0: no text).
        encoded: how many texts were actually run through the model (the
            rest were reused from the previous artifact or were duplicates).
    """

    item_ids: np.ndarray
    vectors: np.ndarray
    text_hashes: np.ndarray
    encoded: int


def compose_text(title: str = "", text: str = "", categories: Sequence[str] = ()) -> str:
    """The text embedded for an item: its text, else its title and categories."""
    text = (text or "").strip()
    if text:
        return text
    parts = [(title or "").strip(), ", ".join(c for c in categories if c)]
    return ". ".join(part for part in parts if part)


def text_hash(text: str) -> int:
    """64-bit fingerprint of a text (0 is reserved for "no text")."""
    if not text:
        return 0
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") or 1


def as_item_texts(items: Iterable[Any]) -> list[ItemText]:
    """Normalise items to :class:`ItemText`.

    Accepts :class:`ItemText`, ``(item_id, text)`` pairs, or objects with a
    ``pk`` (or ``id``) and ``text`` / ``title`` / ``categories`` attributes,
    such as ``personalize.models.Item`` rows.
    """
    out = []
    for item in items:
        if isinstance(item, ItemText):
            out.append(item)
        elif isinstance(item, tuple | list) and len(item) == 2:
            out.append(ItemText(item[0], str(item[1] or "")))
        else:
            item_id = getattr(item, "pk", None)
            if item_id is None:
                item_id = item.id
            out.append(ItemText(item_id, compose_text(
                getattr(item, "title", "") or "", getattr(item, "text", "") or "",
                getattr(item, "categories", None) or (),
            )))
    return out


def dataset_item_texts(dataset: Any) -> list[ItemText]:
    """The item texts of a :class:`~personalize.dataset.Dataset` snapshot."""
    n = len(dataset.item_ids)
    texts = list(dataset.item_texts) or [""] * n
    titles = list(dataset.item_titles) or [""] * n
    categories = list(dataset.item_categories) or [[] for _ in range(n)]
    return [
        ItemText(item_id, compose_text(titles[i], texts[i], categories[i]))
        for i, item_id in enumerate(dataset.item_ids.tolist())
    ]


def id_array(values: Sequence[Any]) -> np.ndarray:
    """Ids as an array an artifact can hold (never object dtype)."""
    array = np.asarray(values)
    if array.dtype == object:
        array = np.asarray([str(v) for v in values])
    return array


def embed_items(
    items: Iterable[Any], previous_artifact: Artifact | None = None, *,
    model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 32,
    normalize: bool = True,
) -> ItemEmbeddings:
    """Embed items, reusing the previous artifact's vector wherever the text is unchanged.

    A vector is reused when the previous artifact was made by the same model
    with the same normalisation and holds a vector for the same text
    fingerprint (whichever item it belonged to). Identical texts are encoded once.

    Args:
        items: see :func:`as_item_texts`.
        previous_artifact: an artifact of the embeddings strategy, or ``None``.
        model: model name or path (see :func:`personalize_embeddings.model.resolve_model`).
        device: torch device for encoding.
        batch_size: encoding batch size.
        normalize: L2-normalise the vectors.

    Returns:
        The vectors, in the order of ``items``.
    """
    entries = as_item_texts(items)
    hashes = np.fromiter((text_hash(e.text) for e in entries), dtype=np.uint64, count=len(entries))
    reusable: dict[int, np.ndarray] = {}
    if previous_artifact is not None and _compatible(previous_artifact, model, normalize):
        old_hashes = previous_artifact["text_hashes"]
        old_vectors = previous_artifact["vectors"]
        wanted = np.isin(old_hashes, hashes) & (old_hashes != 0)
        for position in np.flatnonzero(wanted):
            reusable.setdefault(int(old_hashes[position]), old_vectors[position])
    # Each distinct new text goes through the model once.
    todo: dict[int, str] = {}
    for entry, digest in zip(entries, hashes.tolist(), strict=True):
        if digest and digest not in reusable and digest not in todo:
            todo[digest] = entry.text
    if todo:
        fresh = _encode_reporting(list(todo.values()), model=model, device=device,
                                  batch_size=batch_size, normalize=normalize)
        reusable.update(zip(todo, fresh, strict=True))
    dim = _dim(reusable, previous_artifact, model, device)
    vectors = np.zeros((len(entries), dim), dtype=np.float32)
    for row, digest in enumerate(hashes.tolist()):
        if digest:
            vectors[row] = reusable[digest]
    return ItemEmbeddings(
        item_ids=id_array([e.item_id for e in entries]), vectors=vectors,
        text_hashes=hashes, encoded=len(todo),
    )


def _encode_reporting(texts: list[str], *, model: str, device: str, batch_size: int,
                      normalize: bool) -> np.ndarray:
    """``model.encode`` in slices of :data:`BATCHES_PER_REPORT` batches, reporting progress.

    Encoding a catalog takes minutes on a CPU; whoever runs the training shows
    the reports (``manage.py personalize_train`` draws a bar).
    """
    size = max(int(batch_size), 1) * BATCHES_PER_REPORT
    report_progress(PROGRESS_STEP, 0, len(texts))
    parts = []
    for start in range(0, len(texts), size):
        parts.append(model_module.encode(texts[start:start + size], model=model, device=device,
                                         batch_size=batch_size, normalize=normalize))
        report_progress(PROGRESS_STEP, min(start + size, len(texts)), len(texts))
    return np.concatenate(parts)


def _compatible(artifact: Artifact, model: str, normalize: bool) -> bool:
    meta = artifact.meta
    return (
        "vectors" in artifact and "text_hashes" in artifact
        and meta.get("model") == model and bool(meta.get("normalize", True)) == normalize
    )


def _dim(vectors: dict[int, np.ndarray], previous: Artifact | None, model: str,
         device: str) -> int:
    for vector in vectors.values():
        return len(vector)
    if previous is not None and "vectors" in previous:
        return int(previous["vectors"].shape[1])
    return model_module.embedding_dim(model, device)


def embed_and_upsert(artifact: Artifact, items: Iterable[Any]) -> Artifact:
    """Add or replace the vectors of new or changed items in a trained artifact.

    Call it when the catalog changes (``personalize.signals.items_changed``):
    new items become recommendable by content at once, edited items are
    re-embedded when their text changed, others keep their vector. The model
    and options are the ones the artifact was trained with. Any ANN index in
    the artifact is dropped and rebuilt lazily on the next query.

    ``personalize.training.embedding`` calls it (one Celery task per chunk of
    changed items, merged into a new model version).

    Args:
        artifact: an embeddings artifact; modified in place (save it afterwards).
        items: see :func:`as_item_texts`.

    Returns:
        The same artifact; ``artifact.meta["encoded"]`` says how many texts
        were run through the model.
    """
    options = artifact.meta.get("options", {})
    fresh = embed_items(
        items, artifact, model=artifact.meta.get("model", DEFAULT_MODEL),
        device=options.get("device", "cpu"), batch_size=options.get("batch_size", 32),
        normalize=bool(artifact.meta.get("normalize", True)),
    )
    artifact.meta["encoded"] = fresh.encoded
    if len(fresh.item_ids) == 0:
        return artifact
    index = artifact.index_of("item_ids")
    ids = fresh.item_ids.tolist()
    positions = np.asarray([index.get(item_id, -1) for item_id in ids], dtype=np.int64)
    existing = positions >= 0
    vectors, hashes = artifact["vectors"], artifact["text_hashes"]
    vectors[positions[existing]] = fresh.vectors[existing]
    hashes[positions[existing]] = fresh.text_hashes[existing]
    new = ~existing
    if new.any():
        _, first = np.unique(fresh.item_ids[new], return_index=True)
        keep = np.flatnonzero(new)[np.sort(first)]  # an id listed twice is added once
        artifact.arrays["item_ids"] = _concat_ids(artifact["item_ids"], fresh.item_ids[keep])
        artifact.arrays["vectors"] = np.vstack([vectors, fresh.vectors[keep]])
        artifact.arrays["text_hashes"] = np.concatenate([hashes, fresh.text_hashes[keep]])
    artifact.arrays.pop("hnsw_index", None)
    artifact.cache.clear()
    return artifact


def drop_items(artifact: Artifact, item_ids: Iterable[Any]) -> int:
    """Remove items (deleted from the catalog) from an artifact; returns how many."""
    index = artifact.index_of("item_ids")
    drop = sorted({index[i] for i in item_ids if i in index})
    if not drop:
        return 0
    keep = np.ones(len(artifact["item_ids"]), dtype=bool)
    keep[drop] = False
    for name in ("item_ids", "vectors", "text_hashes"):
        artifact.arrays[name] = artifact[name][keep]
    artifact.arrays.pop("hnsw_index", None)
    artifact.cache.clear()
    return len(drop)


def _concat_ids(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    if old.dtype.kind == new.dtype.kind or len(old) == 0:
        return np.concatenate([old, new]) if len(old) else new
    # Mixed kinds (e.g. int ids joined by str ids): keep them all as strings.
    return np.concatenate([old.astype(str), new.astype(str)])
