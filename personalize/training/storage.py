"""Artifacts in Django storage: saved by training, read by serving and the item embedder.

Paths live under ``PERSONALIZE["ARTIFACT_PATH"]`` of the storage named by
``PERSONALIZE["ARTIFACT_STORAGE"]`` (any Django storage: the file system, S3, ...).
"""

from __future__ import annotations

import io
from typing import Any

from django.core.files.base import File
from django.core.files.storage import storages

from personalize.conf import personalize_settings
from personalize.strategies.artifacts import Artifact


def artifact_storage() -> Any:
    return storages[personalize_settings.ARTIFACT_STORAGE]


def save_artifact(artifact: Artifact, name: str) -> tuple[str, int]:
    """Write ``artifact`` to the configured storage; returns (stored path, bytes)."""
    # the storage reads the buffer itself: no copy of a (possibly large) payload as bytes
    buffer = artifact.to_buffer()
    size = buffer.seek(0, io.SEEK_END)
    buffer.seek(0)
    path = f"{personalize_settings.ARTIFACT_PATH.rstrip('/')}/{name}.npz"
    stored = artifact_storage().save(path, File(buffer, name=path))
    return stored, size


def load_artifact(path: str) -> Artifact:
    with artifact_storage().open(path, "rb") as handle:
        return Artifact.from_bytes(handle.read())


def delete_artifact(path: str) -> None:
    storage = artifact_storage()
    if path and storage.exists(path):
        storage.delete(path)
