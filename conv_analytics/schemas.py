"""The Arrow schema of every table the platform writes: one explicit contract per asset."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

CONVERSATION_STATUSES = ("open", "resolved", "escalated", "abandoned")
MESSAGE_ROLES = ("user", "assistant", "agent", "system")

RAW_CONVERSATIONS = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("started_at", TS, nullable=False),
        pa.field("ended_at", TS),
        pa.field("status", pa.string(), nullable=False),
    ]
)

RAW_MESSAGES = pa.schema(
    [
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),  # redacted before it is stored
        pa.field("sent_at", TS, nullable=False),
        pa.field("redactions", pa.int32(), nullable=False),
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("entity", pa.string(), nullable=False),  # conversations | messages
        pa.field("partition_date", pa.date32(), nullable=False),
        pa.field("locator", pa.string(), nullable=False),  # file:line or nocodb table/Id
        pa.field("reason", pa.string(), nullable=False),
        pa.field("record", pa.large_string(), nullable=False),  # the record as received (redacted)
    ]
)

ENRICHED_MESSAGES = pa.schema(
    [
        *RAW_MESSAGES,
        pa.field("language", pa.string(), nullable=False),
        # columns added after the first release are nullable: files written before them read as nulls
        pa.field("language_confidence", pa.float64()),
        pa.field("text_en", pa.large_string()),  # English translation; null when English already or no pair
        pa.field("translation", pa.string()),  # none | translated | no_pair | failed
        pa.field("token_count", pa.int32(), nullable=False),
        pa.field("lemmas", pa.large_string(), nullable=False),
        pa.field("intent", pa.string()),  # user messages only: the taxonomy's, else the discovered one (see topics)
        pa.field("intent_confidence", pa.float64()),
        pa.field("discovered_intent", pa.string()),  # user messages: label discovered from the org's own messages
        pa.field("sentiment", pa.string(), nullable=False),
        pa.field("sentiment_score", pa.float64(), nullable=False),
        pa.field("is_fallback", pa.bool_(), nullable=False),  # an assistant reply that did not understand
    ]
)

LABEL_COUNTS = pa.list_(pa.struct([("label", pa.string()), ("count", pa.int64())]))

CONVERSATION_CATEGORIES = pa.schema(
    [
        *RAW_CONVERSATIONS,
        pa.field("language", pa.string(), nullable=False),  # most common language of its user messages
        pa.field("duration_seconds", pa.float64()),  # first to last message
        pa.field("messages", pa.int32(), nullable=False),
        pa.field("user_messages", pa.int32(), nullable=False),
        pa.field("assistant_messages", pa.int32(), nullable=False),
        pa.field("agent_messages", pa.int32(), nullable=False),
        pa.field("turns", pa.int32(), nullable=False),  # user messages answered by an assistant or agent
        pa.field("first_response_seconds", pa.float64()),
        pa.field("response_seconds", pa.list_(pa.float64())),  # every reply's latency to the user message before it
        pa.field("fallback_replies", pa.int32(), nullable=False),
        pa.field("translated_messages", pa.int32()),  # messages read through their translation (added later)
        pa.field("topic", pa.string(), nullable=False),  # the taxonomy's where confident, else the discovered one
        pa.field("topic_confidence", pa.float64(), nullable=False),
        pa.field("discovered_topic_id", pa.int32()),  # -1: no discovered topic fits; null: no model yet
        pa.field("discovered_topic", pa.string()),
        pa.field("discovered_topic_score", pa.float64()),
        pa.field("primary_intent", pa.string(), nullable=False),
        pa.field("intents", pa.list_(pa.string())),  # intent of each user message, in order
        pa.field("sentiment", pa.string(), nullable=False),  # label of sentiment_mean
        pa.field("sentiment_mean", pa.float64(), nullable=False),  # over user messages
        pa.field("sentiment_change", pa.float64(), nullable=False),  # last user message minus first
        pa.field("negative_messages", pa.int32(), nullable=False),  # user messages labelled negative
        pa.field("positive_messages", pa.int32(), nullable=False),
    ]
)

ROLLUP_DIMENSIONS = ("all", "channel", "language", "topic", "intent", "discovered_topic")

# One version of a discovered topic (or intent) model per week, fitted on the trailing window of days.
TOPIC_MODELS = pa.schema(
    [
        pa.field("period_start", pa.date32(), nullable=False),  # the week (its Monday)
        pa.field("window_start", pa.date32(), nullable=False),  # first day of the texts fitted on
        pa.field("window_end", pa.date32(), nullable=False),  # last day of the texts fitted on
        pa.field("fitted_at", pa.string()),
        pa.field("n_texts", pa.int64(), nullable=False),
        pa.field("n_topics", pa.int32(), nullable=False),
        pa.field("model", pa.large_binary()),  # TopicModel.to_bytes(); null when there was nothing to fit
    ]
)

ROLLUPS = pa.schema(
    [
        pa.field("period_start", pa.date32(), nullable=False),
        pa.field("period", pa.string(), nullable=False),  # day | week | month
        pa.field("dimension", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("conversations", pa.int64(), nullable=False),
        pa.field("messages", pa.int64(), nullable=False),
        pa.field("user_messages", pa.int64(), nullable=False),
        pa.field("assistant_messages", pa.int64(), nullable=False),
        pa.field("agent_messages", pa.int64(), nullable=False),
        pa.field("active_users", pa.int64(), nullable=False),
        pa.field("new_users", pa.int64(), nullable=False),
        pa.field("returning_users", pa.int64(), nullable=False),
        pa.field("avg_turns", pa.float64()),
        pa.field("median_duration_seconds", pa.float64()),
        pa.field("median_first_response_seconds", pa.float64()),
        pa.field("p95_first_response_seconds", pa.float64()),
        pa.field("median_response_seconds", pa.float64()),
        pa.field("p95_response_seconds", pa.float64()),
        pa.field("escalation_rate", pa.float64()),
        pa.field("resolution_rate", pa.float64()),
        pa.field("abandonment_rate", pa.float64()),
        pa.field("fallback_rate", pa.float64()),
        pa.field("translated_share", pa.float64()),  # messages translated to English / messages
        pa.field("avg_sentiment", pa.float64()),
        pa.field("negative_share", pa.float64()),
        pa.field("positive_share", pa.float64()),
        pa.field("top_topics", LABEL_COUNTS),
        pa.field("top_intents", LABEL_COUNTS),
    ]
)

# every schema by its name here: asset metadata names its schema, the IO manager looks it up
SCHEMAS: dict[str, pa.Schema] = {name: value for name, value in globals().items() if isinstance(value, pa.Schema)}


def schema_name(schema: pa.Schema) -> str:
    """The name of one of the schemas above (the very object, not an equal one)."""
    for name, known in SCHEMAS.items():
        if known is schema:
            return name
    raise LookupError("not one of the schemas in conv_analytics.schemas")
