"""Each conversation's figures from its messages, in one sort of the messages and NumPy over the runs.

A conversation's messages, system ones aside, are taken in order of time (then id): a reply is an
assistant's or agent's message right after a user's, and its latency is the time between them. The
user messages give the conversation's text (one per line), intents in order, sentiment (mean, and the
last minus the first), and language (the most common, ties to the first by name; `und` when none).
`messages` counts every message, system ones included.

Seconds are DuckDB's `epoch` of the interval (whole days, then microseconds), and the sentiment mean
an exact decimal average by DuckDB itself, so the figures are those of the SQL that defined them
before (`conv_analytics_tests/test_conversations.py` holds it): a rerun gives the same bits whatever
the order the rows came in. Of messages sent in the same microsecond the lower id counts as first.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conv_analytics.analytics.grouped import lists, most_frequent, ranked, runs
from conv_analytics.io.query import scratch_cursor

MICROS_PER_DAY = 86_400_000_000


def seconds(micros: np.ndarray) -> np.ndarray:
    """DuckDB's `epoch` of the interval between two timestamps `micros` apart: its whole days and
    the microseconds left are converted apart, which rounds differently from micros / 1e6."""
    days = np.sign(micros) * (np.abs(micros) // MICROS_PER_DAY)
    return days * 86_400.0 + (micros - days * MICROS_PER_DAY) / 1e6


def _decimal_means(groups: np.ndarray, values: pa.Array, n: int) -> np.ndarray:
    """Per group of `n`, the mean of its `values` taken as exact decimals (0.0 where it has none):
    float sums would depend on the order of the rows in their last bits."""
    with scratch_cursor() as cursor:
        cursor.register("scores", pa.table({"g": pa.array(groups, pa.int64()), "v": values}))
        means = cursor.sql("SELECT g, avg(v::DECIMAL(38, 18))::DOUBLE AS m FROM scores GROUP BY g").to_arrow_table()
    out = np.zeros(n)
    out[means.column("g").to_numpy()] = means.column("m").to_numpy()
    return out


def _most_common(groups: np.ndarray, labels: pa.Array, n: int) -> pa.Array:
    """Per group of `n`, its most common label, ties to the first by name; null where it has none."""
    names, ranks = ranked(labels)
    chosen = most_frequent(groups, ranks, n, earliest=False)
    return names.take(pa.array(chosen, mask=chosen < 0))


def conversation_rows(conversations: pa.Table, messages: pa.Table) -> pa.Table:
    """`conversations` (ids unique, as the raw table keeps them) by start time, each with the figures
    of its messages in `messages`; a message of a conversation not in the table is left out."""
    n = conversations.num_rows
    ids = conversations.column("conversation_id")
    position = pc.index_in(messages.column("conversation_id"), value_set=ids)
    position = pc.fill_null(position, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    all_messages = np.bincount(position[position >= 0], minlength=n)

    not_system = pc.fill_null(pc.not_equal(messages.column("role"), "system"), False).to_numpy(False)
    kept = np.flatnonzero((position >= 0) & not_system)
    sent_at = messages.column("sent_at").cast(pa.int64())
    keys = pa.table(
        {
            "c": position[kept],
            "t": sent_at.take(pa.array(kept)),
            "id": messages.column("message_id").take(pa.array(kept)),
        }
    )
    rows = kept[pc.sort_indices(keys, [("c", "ascending"), ("t", "ascending"), ("id", "ascending")]).to_numpy()]
    take = pa.array(rows)
    group = position[rows]
    sent = sent_at.take(take).to_numpy()
    role = messages.column("role").take(take)
    user, assistant, agent = (pc.equal(role, name).to_numpy(False) for name in ("user", "assistant", "agent"))
    same = np.r_[False, group[1:] == group[:-1]]

    reply = (assistant | agent) & np.r_[False, user[:-1]] & same
    reply_group = group[reply]
    latency = seconds(sent[reply] - sent[np.flatnonzero(reply) - 1])
    first_reply = runs(reply_group)[0]
    first_response = np.full(n, np.nan)
    first_response[reply_group[first_reply]] = latency[first_reply]

    user_rows = take.filter(pa.array(user))
    user_group = group[user]
    texts = pc.coalesce(messages.column("text_en").take(user_rows), messages.column("text").take(user_rows))
    spoken = texts.is_valid().to_numpy(False)  # what string_agg joins: a null text is skipped
    user_text = pc.binary_join(
        lists(user_group[spoken], texts.filter(pa.array(spoken)).cast(pa.large_string()), n),
        pa.scalar("\n", pa.large_string()),
    )
    scores = messages.column("sentiment_score").take(user_rows)
    score_values = scores.to_numpy()
    starts, ends = runs(user_group)
    sentiment_change = np.zeros(n)
    sentiment_change[user_group[starts]] = score_values[ends] - score_values[starts]
    sentiment = messages.column("sentiment").take(user_rows)
    languages = messages.column("language").take(user_rows)
    named = pc.fill_null(pc.not_equal(languages, "und"), False).to_numpy(False)
    language = _most_common(user_group[named], languages.filter(pa.array(named)), n)

    last = runs(group)[1]  # sorted by time: a conversation's last message is its latest
    last_at = np.zeros(n, dtype=np.int64)
    last_at[group[last]] = sent[last]
    ended = conversations.column("ended_at").cast(pa.int64()).to_numpy(zero_copy_only=False)
    has_end = conversations.column("ended_at").is_valid().to_numpy(zero_copy_only=False)
    end = np.where(has_end, ended, last_at)
    started = conversations.column("started_at").cast(pa.int64()).to_numpy(zero_copy_only=False)

    def count(groups: np.ndarray) -> pa.Array:
        return pa.array(np.bincount(groups, minlength=n), pa.int32())

    def flag(column: str, value: object) -> np.ndarray:
        return pc.fill_null(pc.equal(messages.column(column).take(take), value), False).to_numpy(False)

    figures = {
        "language": pc.fill_null(language, "und"),
        "duration_seconds": pa.array(seconds(end - started), mask=~has_end & (np.bincount(group, minlength=n) == 0)),
        "messages": pa.array(all_messages, pa.int32()),
        "user_messages": count(user_group),
        "assistant_messages": count(group[assistant]),
        "agent_messages": count(group[agent]),
        "turns": count(reply_group),
        "first_response_seconds": pa.array(first_response, from_pandas=True),
        "response_seconds": lists(reply_group, pa.array(latency), n),
        "fallback_replies": count(group[flag("is_fallback", True)]),
        "translated_messages": count(group[flag("translation", "translated")]),
        "user_text": user_text,
        "intents": lists(user_group, messages.column("intent").take(user_rows), n),
        "sentiment_mean": pa.array(_decimal_means(user_group, scores, n)),
        "sentiment_change": pa.array(sentiment_change),
        "negative_messages": count(user_group[pc.equal(sentiment, "negative").to_numpy(False)]),
        "positive_messages": count(user_group[pc.equal(sentiment, "positive").to_numpy(False)]),
    }
    table = conversations
    for name, column in figures.items():
        table = table.append_column(name, column)
    return table.sort_by([("started_at", "ascending"), ("conversation_id", "ascending")])
