"""The asset graph: source -> raw -> enriched -> categories -> rollups -> report."""

from collections import Counter

import pyarrow as pa

# The daily chain, materialised together for a day or a range of days (by the sensor, the CLI, the tests).
DAILY_ASSETS = (
    "raw_conversations",
    "quarantined_conversations",
    "raw_messages",
    "quarantined_messages",
    "enriched_messages",
    "conversation_categories",
    "daily_rollups",
)


def label_counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Counts of each value of a label column, largest first: materialisation metadata."""
    return dict(Counter(column.to_pylist()).most_common())
