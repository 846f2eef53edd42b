"""Enriched messages: language, tokens and lemmas (spaCy), intent and sentiment (the categoriser), fallbacks."""

import re
import time
from datetime import date

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from conv_analytics.assets.metadata import label_counts
from conv_analytics.assets.topics import MODEL_INPUT_METADATA, TopicDiscoveryResource, assign_by_week, models_by_week
from conv_analytics.categorize.discovered import effective_labels
from conv_analytics.categorize.resource import CategorizerResource
from conv_analytics.categorize.topics import TopicModel
from conv_analytics.config import Config
from conv_analytics.failures import fails_clearly
from conv_analytics.io.tables import MongoCollection, StoredTable, lake_pool
from conv_analytics.resources import setting_field
from conv_analytics.schemas import ENRICHED_MESSAGES
from conv_analytics.text.enrich import enrich_texts
from conv_analytics.translate import MessageTranslator, Translations, make_translator

ENRICHED = StoredTable(
    ENRICHED_MESSAGES,
    "sent_at",
    MongoCollection("messages", ("message_id",), (("conversation_id", "sent_at"), ("sent_at",), ("intent", "sent_at"))),
)

# Replies that admit the assistant did not understand; users add their own in a setting.
DEFAULT_FALLBACK_PATTERNS = (
    r"\b(didn'?t|did not|do not|don'?t) (quite )?(understand|get that|follow)\b",
    r"\bcould you (please )?(rephrase|reword)\b",
    r"\bno (he|te) entendido\b",
    r"\bnicht verstanden\b",
    r"\bje n'ai pas compris\b",
)


def fallback_mask(texts: pa.Array, roles: pa.Array, patterns: tuple[str, ...]) -> pa.Array:
    """True for assistant messages that match any fallback pattern (case-insensitive)."""
    combined = "|".join(f"(?:{p})" for p in DEFAULT_FALLBACK_PATTERNS + patterns)
    try:
        re.compile(combined)
    except re.error as exc:
        raise ValueError(f"{Config.fallback_patterns.env} has an invalid regular expression: {exc}") from None
    assistant = pc.equal(roles, "assistant")
    matches = pc.match_substring_regex(texts.filter(assistant), f"(?i){combined}")  # only replies can be fallbacks
    return pc.replace_with_mask(assistant, assistant, pc.fill_null(matches, False))


class EnrichmentResource(dg.ConfigurableResource):
    """How messages are enriched beyond the categoriser: translation to English, the bot's fallbacks."""

    fallback_patterns: list[str] = setting_field(Config.fallback_patterns)
    translator: str = setting_field(Config.translator)
    translator_url: str = setting_field(Config.translator_url)
    translator_api_key: str = setting_field(Config.translator_api_key)
    translator_required: bool = setting_field(Config.translator_required)
    translations_dir: str = Field(description="Folder of the translation cache, kept across runs.")

    def message_translator(self) -> MessageTranslator:
        return make_translator(
            self.translator,
            self.translator_url,
            self.translator_api_key or None,
            self.translator_required,
            self.translations_dir,
        )


def build_enrich_asset(
    partitions: dg.TimeWindowPartitionsDefinition, messages: dg.AssetKey, intent_model: dg.AssetKey
) -> dg.AssetsDefinition:
    """Enriched messages from the raw ones, with the discovered intents of the week's model."""

    @dg.asset(
        ins={
            "messages": dg.AssetIn(key=messages),
            "intent_models": dg.AssetIn(key=intent_model, metadata=MODEL_INPUT_METADATA),
        },
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=lake_pool("enriched_messages"),
        group_name="transform",
        kinds={"spacy", "numba", "parquet"},
        metadata=ENRICHED.metadata(),
    )
    @fails_clearly
    def enriched_messages(
        context: dg.AssetExecutionContext,
        enrichment: EnrichmentResource,
        categorizer: CategorizerResource,
        discovery: TopicDiscoveryResource,
        messages: pa.Table,
        intent_models: pa.Table,
    ) -> pa.Table:
        """Each message with its language, token count and lemmas, intent (user messages) and sentiment."""
        return enrich(context, messages, enrichment, categorizer, models_by_week(intent_models), discovery.topic_source)

    return enriched_messages


# Messages enriched at once: a slice's features, translations and labels are dropped before the next
# one is made, so a run's memory does not grow with its days (every message is enriched on its own).
SLICE_MESSAGES = 100_000


def enrich(
    context: dg.AssetExecutionContext,
    raw_messages: pa.Table,
    enrichment: EnrichmentResource,
    categorizer: CategorizerResource,
    intent_models: dict[date, TopicModel],
    topic_source: str,
) -> pa.Table:
    """The enriched table of `raw_messages`, with its figures as output metadata."""
    started = time.perf_counter()
    translator = enrichment.message_translator()
    patterns = tuple(enrichment.fallback_patterns)
    parts, sent, cached = [], 0, 0
    for start in range(0, max(raw_messages.num_rows, 1), SLICE_MESSAGES):
        part, translations = enrich_slice(
            raw_messages.slice(start, SLICE_MESSAGES), translator, categorizer, intent_models, topic_source, patterns
        )
        parts.append(part)
        sent, cached = sent + translations.sent, cached + translations.cached
    table = pa.concat_tables(parts)
    seconds = time.perf_counter() - started
    context.add_output_metadata(
        {
            "enrich_seconds": dg.MetadataValue.float(round(seconds, 3)),
            "messages_per_second": dg.MetadataValue.float(round(table.num_rows / seconds, 1) if seconds else 0.0),
            "languages": dg.MetadataValue.json(label_counts(table.column("language"))),
            "translation": dg.MetadataValue.json(label_counts(table.column("translation"))),
            "texts_sent_to_translator": dg.MetadataValue.int(sent),
            "translations_from_cache": dg.MetadataValue.int(cached),
            "sentiment": dg.MetadataValue.json(label_counts(table.column("sentiment"))),
        }
    )
    return table


def enrich_slice(
    raw_messages: pa.Table,
    translator: MessageTranslator,
    categorizer: CategorizerResource,
    intent_models: dict[date, TopicModel],
    topic_source: str,
    fallback_patterns: tuple[str, ...],
) -> tuple[pa.Table, Translations]:
    """The enriched rows of `raw_messages`, and what the translator did for them.

    Language and lemmas come from the original text; intent and sentiment from its English translation
    where there is one (the labellers are English-only), else from the text itself.
    """
    texts = raw_messages.column("text").combine_chunks()
    roles = raw_messages.column("role").combine_chunks()
    text_features = enrich_texts(texts)
    translations = translator(texts.to_pylist(), text_features.column("language").to_pylist())
    text_en = pa.array(translations.text_en, pa.large_string())
    english = pc.coalesce(text_en, texts.cast(pa.large_string()))
    model = categorizer.load()
    sentiment, score = model.predict_sentiment(english)

    user_rows = np.flatnonzero(pc.equal(roles, "user").to_numpy(zero_copy_only=False))
    intent = np.full(raw_messages.num_rows, None, dtype=object)
    intent_confidence = np.full(raw_messages.num_rows, np.nan)
    discovered_intent = np.full(raw_messages.num_rows, None, dtype=object)
    if user_rows.size:
        taken = pa.array(user_rows)
        labels, confidence = model.predict_intent(pc.take(english, taken))
        _, discovered, discovered_score = assign_by_week(
            intent_models, pc.take(raw_messages.column("sent_at"), taken), pc.take(texts, taken), model.device
        )
        labels, confidence = effective_labels(labels, confidence, discovered, discovered_score, topic_source)
        intent[user_rows] = labels.to_pylist()
        intent_confidence[user_rows] = confidence
        discovered_intent[user_rows] = discovered.to_pylist()
    table = raw_messages.append_column("language", text_features.column("language"))
    table = table.append_column("language_confidence", text_features.column("language_confidence"))
    table = table.append_column("text_en", text_en)
    table = table.append_column("translation", pa.array(translations.translation, pa.string()))
    table = table.append_column("token_count", text_features.column("token_count"))
    table = table.append_column("lemmas", text_features.column("lemmas"))
    table = table.append_column("intent", pa.array(intent, pa.string()))
    table = table.append_column("intent_confidence", pa.array(intent_confidence, from_pandas=True))
    table = table.append_column("discovered_intent", pa.array(discovered_intent, pa.string()))
    table = table.append_column("sentiment", sentiment)
    table = table.append_column("sentiment_score", pa.array(score, pa.float64()))
    table = table.append_column("is_fallback", fallback_mask(texts, roles, fallback_patterns))
    return table.select(ENRICHED_MESSAGES.names).cast(ENRICHED_MESSAGES), translations
