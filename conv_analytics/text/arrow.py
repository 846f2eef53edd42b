"""Text as Arrow arrays: conversions from Python strings and the raw UTF-8 buffers the Numba kernels read."""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def check_text_type(arrow_type: pa.DataType) -> None:
    """Texts may arrive as string, large_string or all-null Arrow arrays."""
    if not (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_null(arrow_type)):
        raise TypeError(f"expected a string array, got Arrow type {arrow_type}")


def as_str_list(texts: Iterable[str | None] | pa.Array | pa.ChunkedArray) -> list[str | None]:
    """Materialise texts as Python strings, rejecting values that are not text.

    A clear TypeError with the offending position beats a failure deep inside a regex or
    tokenizer.
    """
    if isinstance(texts, pa.ChunkedArray | pa.Array):
        check_text_type(texts.type)
        return texts.to_pylist()
    if isinstance(texts, str | bytes):
        raise TypeError("expected a sequence of texts, got a single string")
    values = list(texts)
    for i, value in enumerate(values):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"text #{i} is {type(value).__name__}, expected str or None")
    return values


def clean_surrogates(text: str) -> str:
    """Pair up surrogate halves and turn lone ones into U+FFFD so the text is valid UTF-8."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def without_surrogates(values: list[str | None]) -> list[str | None]:
    """Repair texts that would fail UTF-8 encoding (tokenizers and Arrow both need it)."""
    return [clean_surrogates(v) if v is not None and not v.isascii() and _SURROGATE.search(v) else v for v in values]


def to_large_string(values: list[str | None]) -> pa.Array:
    """Build a large_string array; texts with lone surrogates (invalid UTF-8) are repaired."""
    try:
        return pa.array(values, type=pa.large_string())
    except (UnicodeEncodeError, pa.ArrowInvalid):
        return pa.array([None if v is None else clean_surrogates(v) for v in values], type=pa.large_string())


def as_large_string_array(
    texts: Iterable[str | None] | pa.Array | pa.ChunkedArray, *, validate: bool = True
) -> pa.LargeStringArray:
    """One contiguous large_string array, nulls kept; Arrow input is not copied into Python objects.

    `validate` checks Arrow input for invalid UTF-8 (the kernels skip it: they read any bytes).
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    if not isinstance(texts, pa.Array):
        return to_large_string(as_str_list(texts))
    if pa.types.is_dictionary(texts.type):
        texts = texts.dictionary_decode()
    check_text_type(texts.type)
    if validate:
        try:
            texts.validate(full=True)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"invalid text array: {exc}") from exc
    return texts if pa.types.is_large_string(texts.type) else texts.cast(pa.large_string())


def as_string_array(texts: Iterable[str | None] | pa.Array | pa.ChunkedArray) -> pa.LargeStringArray:
    """What the kernels take: one contiguous large_string array with nulls as empty strings."""
    array = as_large_string_array(texts, validate=False)
    return array.fill_null("") if array.null_count else array


def readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view. Numba compiles a kernel once per argument layout, writable or not: handing
    kernels read-only arrays whatever their source (a Parquet read's buffers are read-only, those of an
    array built in memory are not) compiles each one once."""
    view = array.view()
    view.flags.writeable = False
    return view


def utf8_buffers(texts: Iterable[str | None] | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64[n+1], data uint8[...]), read-only views of the Arrow buffers; text i is
    data[offsets[i]:offsets[i+1]]."""
    array = as_string_array(texts)
    n = len(array)
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=n + 1 + array.offset)[array.offset :]
    if data_buf is None or offsets.size == 0:
        offsets, data = offsets.copy() - (offsets[0] if offsets.size else 0), np.zeros(0, dtype=np.uint8)
    else:
        data = np.frombuffer(data_buf, dtype=np.uint8)
    return readonly(offsets), readonly(data)
