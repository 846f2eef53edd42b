"""Figures per group over NumPy arrays: groups are integer codes 0..n-1, one per row.

Shared by the conversation figures and the rollups, which both group many rows by a few keys and
need the result in a fixed order whatever order the rows came in.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def runs(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) positions of each run of equal values in sorted `groups`."""
    if not groups.size:
        return groups, groups
    first = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return first, np.r_[first[1:], groups.size] - 1


def lists(groups: np.ndarray, values: pa.Array | pa.ChunkedArray, n: int) -> pa.ListArray:
    """One list per group of `n` (an empty one where it has no values) from `values` sorted by group."""
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(groups, minlength=n), out=offsets[1:])
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def ranked(labels: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """The distinct labels in byte order (as SQL orders strings) and each row's rank among them;
    a null label ranks -1."""
    distinct = pc.unique(labels).drop_null()
    names = distinct.take(pc.array_sort_indices(distinct))
    ranks = pc.fill_null(pc.index_in(labels, value_set=names), -1)
    return names, ranks.to_numpy(zero_copy_only=False).astype(np.int64)


def most_frequent(groups: np.ndarray, codes: np.ndarray, n: int, *, earliest: bool) -> np.ndarray:
    """Per group of `n`, its most frequent code (-1 where it has none); ties go to the code that came
    first in `codes` (`earliest`), else to the lowest."""
    width = int(codes.max()) + 1 if codes.size else 1
    pairs, first, counts = np.unique(groups.astype(np.int64) * width + codes, return_index=True, return_counts=True)
    group = pairs // width
    order = np.lexsort((first if earliest else pairs % width, -counts, group))
    best = order[runs(group[order])[0]]
    chosen = np.full(n, -1, dtype=np.int64)
    chosen[group[best]] = pairs[best] % width
    return chosen
