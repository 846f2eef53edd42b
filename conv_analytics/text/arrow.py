"""Conversions between the Arrow arrays the assets pass around and Python strings."""

from __future__ import annotations

import re
from collections.abc import Iterable

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


def as_large_string_array(texts: Iterable[str | None] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous large_string array; Arrow input is not copied into Python objects."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if isinstance(texts, pa.Array):
        check_text_type(texts.type)
        try:
            texts.validate(full=True)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"invalid text array: {exc}") from exc
        return texts.cast(pa.large_string())
    return to_large_string(as_str_list(texts))
