"""The figures of each conversation as one SQL statement, for the tests of
`conv_analytics.analytics.conversations`: the definition the vectorised code replaced, with a window
for the replies and ordered aggregates for the texts, intents and latencies. It shares no code with
it, so agreement means the definitions hold.

Where two messages of a conversation share a timestamp, `arg_min` and `arg_max` take whichever of
them DuckDB's plan meets first; the tests compare such conversations apart.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

CONVERSATION_SQL = """
WITH msgs AS (
    SELECT m.*,
           lag(role) OVER w AS prev_role,
           lag(sent_at) OVER w AS prev_sent_at
    FROM (SELECT * FROM messages WHERE role <> 'system'
          AND conversation_id IN (SELECT conversation_id FROM conversations)) m
    WINDOW w AS (PARTITION BY conversation_id ORDER BY sent_at, message_id)
),
replies AS (
    SELECT *,
           CASE WHEN role IN ('assistant', 'agent') AND prev_role = 'user'
                THEN epoch(sent_at - prev_sent_at) END AS response_seconds
    FROM msgs
),
per_conversation AS (
    SELECT conversation_id,
           min(sent_at) AS first_at,
           max(sent_at) AS last_at,
           count(*) FILTER (WHERE role = 'user') AS user_messages,
           count(*) FILTER (WHERE role = 'assistant') AS assistant_messages,
           count(*) FILTER (WHERE role = 'agent') AS agent_messages,
           count(response_seconds) AS turns,
           arg_min(response_seconds, sent_at) FILTER (WHERE response_seconds IS NOT NULL) AS first_response_seconds,
           list(response_seconds ORDER BY sent_at, message_id) FILTER (WHERE response_seconds IS NOT NULL)
               AS response_seconds,
           count(*) FILTER (WHERE is_fallback) AS fallback_replies,
           count(*) FILTER (WHERE translation = 'translated') AS translated_messages,
           string_agg(coalesce(text_en, text), '\n' ORDER BY sent_at, message_id) FILTER (WHERE role = 'user')
               AS user_text,
           list(intent ORDER BY sent_at, message_id) FILTER (WHERE role = 'user') AS intents,
           avg(sentiment_score::DECIMAL(38, 18)) FILTER (WHERE role = 'user')::DOUBLE AS sentiment_mean,
           arg_max(sentiment_score, sent_at) FILTER (WHERE role = 'user')
             - arg_min(sentiment_score, sent_at) FILTER (WHERE role = 'user') AS sentiment_change,
           count(*) FILTER (WHERE role = 'user' AND sentiment = 'negative') AS negative_messages,
           count(*) FILTER (WHERE role = 'user' AND sentiment = 'positive') AS positive_messages,
           mode(language ORDER BY language) FILTER (WHERE role = 'user' AND language <> 'und') AS language
    FROM replies
    GROUP BY conversation_id
),
all_messages AS (
    SELECT conversation_id, count(*) AS messages FROM messages GROUP BY conversation_id
)
SELECT c.*,
       coalesce(p.language, 'und') AS language,
       epoch(coalesce(c.ended_at, p.last_at) - c.started_at) AS duration_seconds,
       coalesce(a.messages, 0)::INTEGER AS messages,
       coalesce(p.user_messages, 0)::INTEGER AS user_messages,
       coalesce(p.assistant_messages, 0)::INTEGER AS assistant_messages,
       coalesce(p.agent_messages, 0)::INTEGER AS agent_messages,
       coalesce(p.turns, 0)::INTEGER AS turns,
       p.first_response_seconds,
       coalesce(p.response_seconds, []) AS response_seconds,
       coalesce(p.fallback_replies, 0)::INTEGER AS fallback_replies,
       coalesce(p.translated_messages, 0)::INTEGER AS translated_messages,
       coalesce(p.user_text, '') AS user_text,
       coalesce(p.intents, []) AS intents,
       coalesce(p.sentiment_mean, 0.0) AS sentiment_mean,
       coalesce(p.sentiment_change, 0.0) AS sentiment_change,
       coalesce(p.negative_messages, 0)::INTEGER AS negative_messages,
       coalesce(p.positive_messages, 0)::INTEGER AS positive_messages
FROM conversations c
LEFT JOIN per_conversation p USING (conversation_id)
LEFT JOIN all_messages a USING (conversation_id)
ORDER BY c.started_at, c.conversation_id
"""


def reference_rows(conversations: pa.Table, messages: pa.Table) -> pa.Table:
    """CONVERSATION_SQL over the two tables."""
    con = duckdb.connect()
    try:
        con.register("conversations", conversations)
        con.register("messages", messages)
        return con.sql(CONVERSATION_SQL).to_arrow_table()
    finally:
        con.close()
