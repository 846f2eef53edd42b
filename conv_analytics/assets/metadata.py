"""Small helpers for the figures assets attach to their materialisations."""

import pyarrow as pa
import pyarrow.compute as pc


def label_counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Counts of each value of a label column, largest first (the first seen first on a tie):
    materialisation metadata, counted by Arrow rather than value by value in Python."""
    counts = pc.value_counts(column)  # in the order values are first seen
    values, numbers = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
    return {values[i]: numbers[i] for i in sorted(range(len(values)), key=lambda i: -numbers[i])}
