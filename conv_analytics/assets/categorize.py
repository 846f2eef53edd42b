"""Conversation categories: one row per conversation started that day, with its topic, intent and sentiment.

A conversation may run past midnight, so each day also reads the next day's messages (when that day
exists yet); all of a conversation's figures are attributed to the day it started.
"""

import time
from datetime import date

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conv_analytics.analytics.conversations import conversation_rows
from conv_analytics.analytics.grouped import most_frequent
from conv_analytics.assets.metadata import label_counts
from conv_analytics.assets.topics import MODEL_INPUT_METADATA, TopicDiscoveryResource, assign_by_week, models_by_week
from conv_analytics.categorize.discovered import effective_labels
from conv_analytics.categorize.resource import CategorizerResource
from conv_analytics.categorize.topics import TopicModel
from conv_analytics.failures import fails_clearly
from conv_analytics.io.manager import ALLOW_MISSING_LAST, COLUMNS
from conv_analytics.io.tables import MongoCollection, StoredTable, lake_pool
from conv_analytics.partitions import follows_the_data
from conv_analytics.schemas import CONVERSATION_CATEGORIES

CATEGORIES = StoredTable(
    CONVERSATION_CATEGORIES,
    "started_at",
    MongoCollection(
        "conversations",
        ("conversation_id",),
        (("started_at",), ("user_id", "started_at"), ("topic", "started_at"), ("primary_intent", "started_at")),
    ),
)

# Intents that say little about why someone came; the primary intent is taken from the others first.
SOCIAL_INTENTS = ("greeting", "thanks", "goodbye", "affirm", "deny", "other")

# The message columns `conversation_rows` reads: the step loads no others.
MESSAGE_COLUMNS = (
    "conversation_id",
    "message_id",
    "role",
    "sent_at",
    "text",
    "text_en",
    "translation",
    "language",
    "intent",
    "sentiment",
    "sentiment_score",
    "is_fallback",
)


def primary_intents(intents: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each conversation's primary intent from its user messages' intents (a list per conversation, in
    order): the most frequent substantive one, ties going to the earliest; a social one only when
    nothing else was said; "other" when nothing was. Counted over the whole column at once."""
    intents = intents.combine_chunks() if isinstance(intents, pa.ChunkedArray) else intents
    n = len(intents)
    parents = pc.list_parent_indices(intents).to_numpy()
    encoded = pc.list_flatten(intents).dictionary_encode()
    names = encoded.dictionary.to_pylist()
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    named = np.array([bool(name) for name in names] + [False])  # code -1 (a null) last
    social = np.array([name in SOCIAL_INTENTS for name in names] + [False])
    said = named[codes]
    substantive = said & ~social[codes]
    has_substantive = np.bincount(parents[substantive], minlength=n) > 0
    pool = np.where(has_substantive[parents], substantive, said)
    chosen = most_frequent(parents[pool], codes[pool], n, earliest=True)
    labels = pa.array([*names, "other"], pa.string())
    return labels.take(pa.array(np.where(chosen < 0, len(names), chosen)))


def categorize(
    conversations: pa.Table,
    messages: pa.Table,
    categorizer: CategorizerResource,
    topic_models: dict[date, TopicModel],
    topic_source: str,
) -> pa.Table:
    """One row per conversation in `conversations`, from its messages in `messages`: the taxonomy's
    topic, the discovered one of the week's model, and the one the rollups use (`topic_source`)."""
    rows = conversation_rows(conversations, messages)
    model = categorizer.load()
    topics, topic_confidence = model.predict_topic(rows.column("user_text"))
    no_text = np.asarray(rows.column("user_messages").to_numpy(zero_copy_only=False)) == 0
    topic_list = [("other" if empty else t) for t, empty in zip(topics.to_pylist(), no_text, strict=True)]
    confidence = np.where(no_text, 0.0, np.asarray(topic_confidence, dtype=np.float64))
    discovered_ids, discovered, scores = assign_by_week(
        topic_models, rows.column("started_at"), rows.column("user_text"), model.device
    )
    topic, confidence = effective_labels(
        pa.array(topic_list, pa.string()), confidence, discovered, scores, topic_source
    )
    means = rows.column("sentiment_mean").to_numpy(zero_copy_only=False)
    table = rows.drop_columns(["user_text"])
    table = table.append_column("topic", topic)
    table = table.append_column("topic_confidence", pa.array(confidence, pa.float64()))
    table = table.append_column("discovered_topic_id", discovered_ids)
    table = table.append_column("discovered_topic", discovered)
    table = table.append_column("discovered_topic_score", pa.array(scores, pa.float64(), from_pandas=True))
    table = table.append_column("primary_intent", primary_intents(rows.column("intents")))
    table = table.append_column("sentiment", model.sentiment_labels(np.asarray(means, dtype=np.float64)))
    return table.select(CONVERSATION_CATEGORIES.names).cast(CONVERSATION_CATEGORIES)


def build_categories_asset(
    partitions: dg.TimeWindowPartitionsDefinition,
    conversations: dg.AssetKey,
    messages: dg.AssetKey,
    topic_model: dg.AssetKey,
) -> dg.AssetsDefinition:
    """Categories of each day's conversations from their raw rows, their enriched messages and the
    discovered topics of the week's model."""

    @dg.asset(
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=lake_pool("conversation_categories"),
        group_name="transform",
        kinds={"duckdb", "numba", "parquet"},
        # a week without a topic model yet does not hold its days back (its discovered columns stay empty)
        automation_condition=follows_the_data(reset_while_running=True).ignore(dg.AssetSelection.assets(topic_model)),
        metadata=CATEGORIES.metadata(),
        ins={
            "conversations": dg.AssetIn(key=conversations),
            "messages": dg.AssetIn(
                key=messages,
                partition_mapping=dg.TimeWindowPartitionMapping(
                    end_offset=1, allow_nonexistent_upstream_partitions=True
                ),
                metadata={ALLOW_MISSING_LAST: True, COLUMNS: list(MESSAGE_COLUMNS)},
            ),
            "topic_models": dg.AssetIn(key=topic_model, metadata=MODEL_INPUT_METADATA),
        },
    )
    @fails_clearly
    def conversation_categories(
        context: dg.AssetExecutionContext,
        categorizer: CategorizerResource,
        discovery: TopicDiscoveryResource,
        conversations: pa.Table,
        messages: pa.Table,
        topic_models: pa.Table,
    ) -> pa.Table:
        """Topic, primary intent, sentiment (mean and change), response times and outcome of each conversation."""
        started = time.perf_counter()
        models = models_by_week(topic_models, categorizer.taxonomy)
        table = categorize(conversations, messages, categorizer, models, discovery.topic_source)
        without_messages = int(np.sum(table.column("messages").to_numpy() == 0)) if table.num_rows else 0
        context.add_output_metadata(
            {
                "categorize_seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
                "conversations_without_messages": dg.MetadataValue.int(without_messages),
                "topics": dg.MetadataValue.json(label_counts(table.column("topic"))),
                "discovered_topics": dg.MetadataValue.json(label_counts(table.column("discovered_topic"))),
                "topic_model_weeks": dg.MetadataValue.text(", ".join(str(w) for w in sorted(models)) or "none yet"),
                "primary_intents": dg.MetadataValue.json(label_counts(table.column("primary_intent"))),
            }
        )
        return table

    return conversation_categories
