"""Hand Arrow string arrays to Numba kernels as raw UTF-8 bytes and offsets, without Python strings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def as_string_array(
    texts: Sequence[str | None] | pa.Array | pa.ChunkedArray,
) -> pa.LargeStringArray:
    """One contiguous large_string array (nulls become empty strings)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.large_string())
    if pa.types.is_dictionary(texts.type):
        texts = texts.dictionary_decode()
    if not pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.large_string())
    if texts.null_count:
        texts = texts.fill_null("")
    return texts


def utf8_buffers(
    texts: Sequence[str | None] | pa.Array | pa.ChunkedArray,
) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64[n+1], data uint8[...]) viewing the Arrow buffers; text i is data[offsets[i]:offsets[i+1]]."""
    array = as_string_array(texts)
    n = len(array)
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=n + 1 + array.offset)[array.offset :]
    if data_buf is None or offsets.size == 0:
        return offsets.copy() - (offsets[0] if offsets.size else 0), np.zeros(0, dtype=np.uint8)
    data = np.frombuffer(data_buf, dtype=np.uint8)
    return offsets, data
