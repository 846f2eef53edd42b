"""The asset graph: source -> raw -> enriched -> categories -> rollups -> report."""

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
