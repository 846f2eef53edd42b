"""Small helpers for the figures assets attach to their materialisations."""

from collections import Counter

import pyarrow as pa


def label_counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Counts of each value of a label column, largest first: materialisation metadata."""
    return dict(Counter(column.to_pylist()).most_common())
