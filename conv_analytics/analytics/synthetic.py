"""Deterministic synthetic `conversation_categories` rows, for rollup tests and the rollup benchmark.

Vectorised with NumPy so a million messages take about a second to make; the demo source (with
real text through enrich and categorise) is what end-to-end tests use.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from conv_analytics.analytics.rollups import utc_midnight
from conv_analytics.schemas import CONVERSATION_CATEGORIES

CHANNELS = ("web", "whatsapp", "email", "app")
LANGUAGES = ("en", "de", "fr", "es")
TOPICS = ("billing", "delivery", "account", "returns", "technical", "product", "other")
INTENTS = ("ask_status", "cancel", "complain", "greeting", "pay", "refund", "thanks", "update_details")
STATUSES = ("resolved", "escalated", "abandoned", "open")
DAY_US = 86_400_000_000


def _choice(rng: np.random.Generator, labels: tuple[str, ...], size: int, skew: float = 1.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(labels) + 1) ** skew
    return rng.choice(np.array(labels, dtype=object), size=size, p=weights / weights.sum())


def _lists(rng: np.random.Generator, lengths: np.ndarray, values: pa.Array) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _discovered(rng: np.random.Generator, n: int) -> dict[str, pa.Array]:
    ids = rng.integers(-1, 6, n)
    missing = rng.random(n) < 0.1
    labels = np.where(ids < 0, "other", np.char.add("topic ", ids.astype(str)))
    return {
        "discovered_topic_id": pa.array(ids, pa.int32(), mask=missing),
        "discovered_topic": pa.array(labels.tolist(), pa.string(), mask=missing),
        "discovered_topic_score": pa.array(rng.uniform(0.2, 0.9, n), mask=missing),
    }


def synthetic_categories(
    start: date,
    days: int,
    conversations_per_day: int,
    users: int,
    seed: int = 7,
    user_prefix: str = "u",
    id_prefix: str = "c",
) -> pa.Table:
    """Conversations spread over `days` UTC days from `start`, about 8 messages each."""
    rng = np.random.default_rng(seed)
    n = days * conversations_per_day
    day_index = np.repeat(np.arange(days), conversations_per_day)
    start_us = int(utc_midnight(start).timestamp()) * 1_000_000
    started = start_us + day_index * DAY_US + rng.integers(0, DAY_US, n)
    user_messages = rng.integers(1, 7, n)
    agent = rng.binomial(user_messages, 0.1)
    assistant = np.maximum(user_messages - agent - rng.binomial(1, 0.15, n), 0)
    replies = assistant + agent
    system = rng.binomial(1, 0.05, n)
    latencies = rng.gamma(1.5, 6.0, int(replies.sum())).round(3)
    offsets = np.concatenate([[0], np.cumsum(replies)])
    first_response = np.where(replies > 0, latencies[np.minimum(offsets[:-1], len(latencies) - 1)], np.nan)
    duration = np.where(user_messages + replies > 1, rng.exponential(600.0, n).round(3), 0.0)
    negative = rng.binomial(user_messages, 0.25)
    positive = rng.binomial(user_messages - negative, 0.3)
    sentiment_mean = np.clip(rng.normal(0.05, 0.4, n), -1, 1)
    intents = _choice(rng, INTENTS, int(user_messages.sum()), 0.8)
    intents[rng.random(len(intents)) < 0.05] = None
    topics = _choice(rng, TOPICS, n, 0.7)
    columns = {
        "conversation_id": pa.array([f"{id_prefix}{i}" for i in range(n)]),
        "user_id": pa.array([f"{user_prefix}{u}" for u in rng.zipf(1.3, n) % users]),
        "channel": pa.array(_choice(rng, CHANNELS, n)),
        "started_at": pa.array(started, pa.timestamp("us", tz="UTC")),
        "ended_at": pa.array(started + (duration * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC")),
        "status": pa.array(_choice(rng, STATUSES, n, 1.5)),
        "language": pa.array(_choice(rng, LANGUAGES, n, 1.5)),
        "duration_seconds": pa.array(duration),
        "messages": pa.array(user_messages + replies + system, pa.int32()),
        "user_messages": pa.array(user_messages, pa.int32()),
        "assistant_messages": pa.array(assistant, pa.int32()),
        "agent_messages": pa.array(agent, pa.int32()),
        "turns": pa.array(np.minimum(user_messages, replies), pa.int32()),
        "first_response_seconds": pa.array(first_response, from_pandas=True),
        "response_seconds": _lists(rng, replies, pa.array(latencies)),
        "fallback_replies": pa.array(rng.binomial(assistant, 0.08), pa.int32()),
        "translated_messages": pa.array(rng.binomial(user_messages + replies + system, 0.1), pa.int32()),
        "topic": pa.array(topics),
        # discovered topics: -1 for a conversation far from every topic, null before the first model
        **_discovered(rng, n),
        "topic_confidence": pa.array(rng.uniform(0.3, 1.0, n)),
        "primary_intent": pa.array(_choice(rng, INTENTS, n, 0.8)),
        "intents": _lists(rng, user_messages, pa.array(intents, pa.string())),
        "sentiment": pa.array(
            np.where(sentiment_mean < -0.05, "negative", np.where(sentiment_mean > 0.05, "positive", "neutral"))
        ),
        "sentiment_mean": pa.array(sentiment_mean),
        "sentiment_change": pa.array(rng.normal(0, 0.3, n)),
        "negative_messages": pa.array(negative, pa.int32()),
        "positive_messages": pa.array(positive, pa.int32()),
    }
    return pa.Table.from_pydict(columns, schema=CONVERSATION_CATEGORIES)
