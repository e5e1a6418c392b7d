"""The versioned artifact format: what ``Strategy.fit`` returns and ``recommend`` reads.

An artifact is a set of named NumPy arrays plus a JSON metadata dict, written
as an uncompressed ``.npz`` (a zip of ``.npy`` files) with the metadata under
the reserved name ``__meta__``. Loading never unpickles: object arrays are
refused (``allow_pickle=False``), so a tampered file cannot run code.

Metadata always carries ``format`` (this module's :data:`FORMAT_VERSION`),
``strategy`` (the class path), ``artifact_version`` (the strategy's own layout
version) and ``options``; strategies add what they like.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

FORMAT_VERSION = 1
META_KEY = "__meta__"


class ArtifactFormatError(ValueError):
    """The file is not an artifact this version can read."""


@dataclass
class Artifact:
    """What ``Strategy.fit`` returns and ``Strategy.recommend`` reads."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    #: Per-process scratch space for derived structures (id -> index maps,
    #: normalised matrices). Never saved.
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())

    # --- sparse matrices are stored as their three CSR arrays ---
    def put_csr(self, name: str, matrix: sp.spmatrix | sp.sparray) -> None:
        csr = sp.csr_array(matrix)
        self.arrays[f"{name}.data"] = csr.data
        self.arrays[f"{name}.indices"] = csr.indices
        self.arrays[f"{name}.indptr"] = csr.indptr
        self.arrays[f"{name}.shape"] = np.asarray(csr.shape, dtype=np.int64)

    def get_csr(self, name: str) -> sp.csr_array:
        key = f"csr:{name}"
        if key not in self.cache:
            self.cache[key] = sp.csr_array(
                (self.arrays[f"{name}.data"], self.arrays[f"{name}.indices"],
                 self.arrays[f"{name}.indptr"]),
                shape=tuple(int(n) for n in self.arrays[f"{name}.shape"]),
            )
        return self.cache[key]

    def index_of(self, ids_name: str = "item_ids") -> dict[Any, int]:
        """A cached id -> position map for an id array (``item_ids`` by default)."""
        key = f"index:{ids_name}"
        if key not in self.cache:
            self.cache[key] = {v: i for i, v in enumerate(self.arrays[ids_name].tolist())}
        return self.cache[key]

    def to_bytes(self) -> bytes:
        """The ``.npz`` file as bytes."""
        return self.to_buffer().getvalue()

    def to_buffer(self) -> io.BytesIO:
        """The ``.npz`` file in memory, positioned at its start."""
        meta = {"format": FORMAT_VERSION, **self.meta}
        buffer = io.BytesIO()
        arrays = dict(self.arrays)
        arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        for name, array in arrays.items():
            if array.dtype == object:
                raise ArtifactFormatError(
                    f"Array {name!r} has dtype object; artifacts hold no pickles."
                )
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        buffer.seek(0)
        return buffer

    @classmethod
    def from_bytes(cls, payload: bytes) -> Artifact:
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (ValueError, OSError) as exc:
            raise ArtifactFormatError(f"Not a readable artifact: {exc}") from exc
        if META_KEY not in arrays:
            raise ArtifactFormatError("Artifact has no metadata.")
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ArtifactFormatError(
                f"Artifact format {meta.get('format')!r}; this version reads {FORMAT_VERSION}."
            )
        return cls(arrays=arrays, meta=meta)
