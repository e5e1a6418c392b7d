"""Grouping by packed integer keys: the sorts the snapshot, the splits and scoring share.

A (row, column) pair is the key ``row * n_columns + column``; events grouped by
pair, histories grouped by subject and CSR matrices built from pairs are all a
sort of such keys. These helpers do those sorts without hashing and without a
Python loop.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def stable_order(keys: np.ndarray, bound: int) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for integer keys in ``[0, bound)``.

    Each key is packed with its position into one int64 and those are sorted:
    NumPy sorts int64 values (SIMD quicksort) several times faster than it
    argsorts them stably, and distinct packed values need no stability.
    """
    n = len(keys)
    shift = max(n - 1, 1).bit_length()
    if n < 2 or max(int(bound) - 1, 1).bit_length() + shift > 63:
        return np.argsort(keys, kind="stable")
    packed = keys.astype(np.int64) << shift
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    packed &= (1 << shift) - 1
    return packed


def time_order(timestamps: np.ndarray) -> np.ndarray:
    """``np.argsort(timestamps, kind="stable")``, cheaper on shuffled times.

    Rows read in insertion order are nearly in time order, which the stable
    sort (timsort) handles in one pass. Shuffled times (an import) are ranked
    by a quicksort instead and the ranks put in stable order with
    :func:`stable_order`.
    """
    n = len(timestamps)
    if n < 2 or np.count_nonzero(timestamps[1:] < timestamps[:-1]) * 16 < n:
        return np.argsort(timestamps, kind="stable")
    order = np.argsort(timestamps)
    ordered = timestamps[order]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.cumsum(np.r_[False, ordered[1:] != ordered[:-1]])
    return stable_order(rank, n)


def csr_parts(keys: np.ndarray, shape: tuple[int, int],
              dtype: type[np.integer] = np.int64) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of a CSR matrix whose entries are sorted, distinct keys."""
    width = max(shape[1], 1)
    indptr = np.zeros(shape[0] + 1, dtype=dtype)
    np.cumsum(np.bincount(keys // width, minlength=shape[0]), out=indptr[1:])
    return indptr, (keys % width).astype(dtype, copy=False)


def csr_from_keys(keys: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    """A canonical CSR from sorted, distinct ``row * n_cols + col`` keys."""
    index_dtype = np.int32 if max(len(keys), shape[1]) < 2**31 else np.int64
    indptr, indices = csr_parts(keys, shape, index_dtype)
    matrix = sp.csr_array((values, indices, indptr), shape=shape)
    matrix.has_canonical_format = True  # sorted, distinct keys: sorted columns, no duplicates
    return matrix
