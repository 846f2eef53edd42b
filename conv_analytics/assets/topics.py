"""Discovered topics and intents: one model version per week, learnt from the organisation's own
conversations of a trailing window of days, kept in the lake with every earlier version.

Each week's fit starts from the previous week's model (`TopicModel.refit`), so a topic that is still
there keeps its id and label; new ids go to new topics only, and merges and splits are recorded in the
model. The topic model reads each conversation's user messages in English where a translation exists
(`enriched_messages`); the intent model reads the user messages one by one as they arrived
(`raw_messages`), since `enriched_messages` itself carries the discovered intent.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conv_analytics import markdown
from conv_analytics.categorize.resource import CategorizerResource
from conv_analytics.categorize.topics import TopicModel, fit
from conv_analytics.config import Config
from conv_analytics.dates import days_in, period_end
from conv_analytics.failures import fails_clearly
from conv_analytics.io.lake import ParquetLake
from conv_analytics.io.manager import MISSING_READS_EMPTY
from conv_analytics.io.resources import LakeResource
from conv_analytics.io.tables import StoredTable, lake_pool
from conv_analytics.partitions import Partitions, follows_the_data
from conv_analytics.resources import setting_field
from conv_analytics.schemas import TOPIC_MODELS

MODELS = StoredTable(TOPIC_MODELS, "period_start")

# A model input of a daily asset: the version of the week the day is in, or none before the first fit.
MODEL_INPUT_METADATA = {MISSING_READS_EMPTY: True}

CONVERSATION_TEXTS = """
SELECT string_agg(coalesce(text_en, text), '\n' ORDER BY sent_at, message_id) AS text
FROM messages WHERE role = 'user'
GROUP BY conversation_id ORDER BY conversation_id
"""
MESSAGE_TEXTS = "SELECT text FROM messages WHERE role = 'user' ORDER BY sent_at, message_id"


class TopicDiscoveryResource(dg.ConfigurableResource):
    """How far back each weekly refit looks, and which topic and intent the rollups use."""

    window_days: int = setting_field(Config.topics_window_days)
    max_texts: int = setting_field(Config.topics_max_texts)
    topic_source: str = setting_field(Config.topic_source)


@dataclass(frozen=True)
class ModelSource:
    """What a model learns from: the daily table it reads, the columns it needs and the SQL that turns
    one window of that table into one text per document (a conversation or a message)."""

    table: str
    stored: StoredTable
    columns: tuple[str, ...]
    texts_sql: str
    document: str  # the column naming a document, by which a busy window is sampled
    curate: bool  # apply the analyst's curated names (the taxonomy setting) to its topics


def models_by_week(table: pa.Table, taxonomy: str = "") -> dict[date, TopicModel]:
    """The model versions in a model input (one per week the run's days are in; none before a fit),
    with the analyst's curated names of `taxonomy` (a topics export) applied: they count from the next
    run on, whether or not the model has been refit since."""
    models = {
        row["period_start"]: TopicModel.from_bytes(row["model"])
        for row in table.select(["period_start", "model"]).to_pylist()
        if row["model"] is not None
    }
    return {week: model.curated(taxonomy) for week, model in models.items()} if taxonomy else models


def assign_by_week(
    models: dict[date, TopicModel], times: pa.Array, texts: pa.Array, device: str
) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """(topic id, label, score) of each text by the model of the week of its time; nulls without one."""
    n = len(texts)
    ids = np.full(n, -1, dtype=np.int32)
    scores = np.full(n, np.nan)
    labels = np.full(n, None, dtype=object)
    valid = np.zeros(n, dtype=bool)
    if n and models:
        days = times.cast(pa.timestamp("us", tz="UTC")).cast(pa.date32()).to_numpy(zero_copy_only=False)
        weeks = days - ((days.astype("datetime64[D]").view("int64") - 4) % 7).astype("timedelta64[D]")
        for week, model in models.items():
            rows = np.flatnonzero(weeks == np.datetime64(week))
            if rows.size:
                assigned = model.assign(texts.take(pa.array(rows)), device)
                ids[rows] = assigned.column("topic_id").to_numpy()
                labels[rows] = assigned.column("topic").to_pylist()
                scores[rows] = assigned.column("topic_score").to_numpy()
                valid[rows] = True
    return pa.array(ids, pa.int32(), mask=~valid), pa.array(labels, pa.string(), mask=~valid), scores


class WindowSampler:
    """The documents of trailing windows of one source, one window after another (the weeks of a run):
    all of a window's documents, or, past `max_texts`, the `max_texts` whose ids hash lowest (md5: the
    same documents whatever the run, and mostly the same from one week's window to the next).

    A busy window is read twice, so that it never sits in memory whole: its user documents' ids and
    hashes (kept per day for the next window, which shares most of its days), then its texts a day at
    a time, each day filtered by its own chosen ids."""

    def __init__(self, lake: ParquetLake, source: ModelSource, max_texts: int) -> None:
        self.lake, self.source, self.max_texts = lake, source, max_texts
        self.day_ids: dict[str, pa.Table] = {}  # day -> its user documents: id, md5 (hex)

    def texts(self, days: list[date]) -> pa.Array:
        """One text per document of the days of `days` that are in the lake, in the SQL's order."""
        source = self.source
        present = set(self.lake.keys(source.table))
        keys = [d.isoformat() for d in days if d.isoformat() in present]
        columns = list(source.columns)
        con = duckdb.connect()
        try:
            chosen = None
            if sum(self.lake.row_counts(source.table, keys).values()) > self.max_texts:  # a document is a row at least
                chosen = self._chosen(con, keys)
            if chosen is None:
                messages = self.lake.read(source.table, keys, source.stored.schema, columns=columns)
            else:
                day_tables = (
                    (self.lake.read(source.table, [key], source.stored.schema, columns=columns), chosen[key])
                    for key in keys
                )
                messages = pa.concat_tables(
                    table.filter(pc.is_in(table.column(source.document), value_set=ids)) for table, ids in day_tables
                )
            con.register("messages", messages)
            return con.sql(source.texts_sql).to_arrow_table().column("text").combine_chunks()
        finally:
            con.close()

    def _chosen(self, con: duckdb.DuckDBPyConnection, keys: list[str]) -> dict[str, pa.Array] | None:
        """Each day's ids among the window's `max_texts` lowest (md5, id); None when the window has no
        more documents than that."""
        self.day_ids = {
            key: self.day_ids[key] if key in self.day_ids else self._user_documents(con, key) for key in keys
        }
        con.register("ids", pa.concat_tables(self.day_ids.values()))
        ranked = con.sql(
            "SELECT id, hash FROM (SELECT DISTINCT id, hash FROM ids) ORDER BY hash, id LIMIT $limit",
            params={"limit": self.max_texts + 1},
        ).to_arrow_table()
        con.unregister("ids")
        if ranked.num_rows <= self.max_texts:
            return None
        last_id, last_hash = ranked.column("id")[-2], ranked.column("hash")[-2]  # the last one kept
        chosen = {}
        for key, table in self.day_ids.items():
            hashes, ids = table.column("hash"), table.column("id")
            kept = pc.or_(pc.less(hashes, last_hash), pc.and_(pc.equal(hashes, last_hash), pc.less_equal(ids, last_id)))
            chosen[key] = ids.filter(kept).combine_chunks()
        return chosen

    def _user_documents(self, con: duckdb.DuckDBPyConnection, key: str) -> pa.Table:
        source = self.source
        con.register(
            "day", self.lake.read(source.table, [key], source.stored.schema, columns=["role", source.document])
        )
        try:
            return con.sql(
                f"SELECT DISTINCT {source.document} AS id, md5({source.document}) AS hash FROM day WHERE role = 'user'"
            ).to_arrow_table()
        finally:
            con.unregister("day")


def previous_version(lake: ParquetLake, name: str, before: date) -> TopicModel | None:
    """The latest stored version of a model for a week before `before`."""
    earlier = [k for k in lake.keys(name) if k < before.isoformat()]
    if not earlier:
        return None
    return next(iter(models_by_week(lake.read(name, [earlier[-1]], TOPIC_MODELS)).values()), None)


def dated(model: TopicModel, last: date) -> None:
    """Date a version by the last day it learnt from, not by the clock, so fitting the same week again
    writes the same bytes (the fit itself is seeded)."""
    when = f"{last.isoformat()}T23:59:59+00:00"
    model.info["fitted_at"] = when
    if model.info.get("history"):
        model.info["history"][-1]["at"] = when
    if "curated_at" in model.info:
        model.info["curated_at"] = when


def fit_weeks(
    context: dg.AssetExecutionContext,
    name: str,
    source: ModelSource,
    lake: ParquetLake,
    discovery: TopicDiscoveryResource,
    taxonomy: str,
) -> Iterator[dict]:
    """One row per week of the run, each fitted from the previous week's model."""
    weeks = [date.fromisoformat(key) for key in context.partition_keys]
    today = datetime.now(timezone.utc).date()
    previous = previous_version(lake, name, weeks[0])
    sampler = WindowSampler(lake, source, discovery.max_texts)
    for week in weeks:
        last = min(period_end("week", week), today + timedelta(days=1)) - timedelta(days=1)
        first = last - timedelta(days=discovery.window_days - 1)
        texts = sampler.texts(days_in(first, last))
        model = previous.refit(texts) if previous is not None else fit(texts)
        if source.curate and taxonomy:
            model = model.curated(taxonomy)
        dated(model, last)
        context.log.info(
            f"{name} {week}: {len(model.shown_topics())} topics from {len(texts)} texts of {first}..{last}"
            + (" (refit)" if previous is not None else "")
        )
        previous = model
        row = model.to_table().to_pylist()[0]
        yield {**row, "period_start": week, "window_start": first, "window_end": last}


def build_model_asset(
    name: str, description: str, source: ModelSource, upstream: dg.AssetKey, partitions: Partitions
) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        description=description,
        partitions_def=partitions.model_weeks,
        deps=[upstream],
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=lake_pool(name),
        # fit every Monday for the new week; a week is refit whenever its days change, at any age (the
        # week in progress as its days arrive, an old week once all its days are loaded)
        automation_condition=dg.AutomationCondition.on_cron("0 3 * * 1") | follows_the_data(),
        group_name="topics",
        kinds={"numba", "parquet"},
        metadata=MODELS.metadata(),
    )
    @fails_clearly
    def model(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        discovery: TopicDiscoveryResource,
        categorizer: CategorizerResource,
    ) -> pa.Table:
        rows = list(fit_weeks(context, name, source, lake.lake(), discovery, categorizer.taxonomy))
        latest = TopicModel.from_bytes(rows[-1]["model"])
        topics = latest.shown_topics()
        context.add_output_metadata(
            {
                "weeks": dg.MetadataValue.int(len(rows)),
                "window": dg.MetadataValue.text(f"{rows[-1]['window_start']}..{rows[-1]['window_end']}"),
                "texts": dg.MetadataValue.int(rows[-1]["n_texts"]),
                "topics": dg.MetadataValue.int(len(topics)),
                "largest_topics": dg.MetadataValue.md(markdown.bullets(f"{t.label} ({t.size})" for t in topics[:10])),
                # kept, new, split and merged topics of the latest refit
                "changes": dg.MetadataValue.json((latest.info.get("history") or [{}])[-1]),
            }
        )
        return pa.Table.from_pylist(rows, schema=TOPIC_MODELS)

    return model


def intent_source(messages: str, stored: StoredTable) -> ModelSource:
    """The intent model's documents: each user message of the table `messages`, as it arrived."""
    return ModelSource(messages, stored, ("role", "text", "sent_at", "message_id"), MESSAGE_TEXTS, "message_id", False)


def topic_source(enriched: str, stored: StoredTable) -> ModelSource:
    """The topic model's documents: each conversation's user messages (in English where translated)."""
    columns = ("conversation_id", "role", "text", "text_en", "sent_at", "message_id")
    return ModelSource(enriched, stored, columns, CONVERSATION_TEXTS, "conversation_id", True)


def build_intent_model(partitions: Partitions, messages: dg.AssetKey, stored: StoredTable) -> dg.AssetsDefinition:
    """Intents discovered in the user messages (as they arrived) of a trailing window, per week."""
    return build_model_asset(
        "intent_model",
        "Intents discovered in the user messages of a trailing window, one version per week.",
        intent_source(messages.path[-1], stored),
        messages,
        partitions,
    )


def build_topic_model(partitions: Partitions, enriched: dg.AssetKey, stored: StoredTable) -> dg.AssetsDefinition:
    """Topics discovered in the conversations (user messages in English) of a trailing window, per week."""
    return build_model_asset(
        "topic_model",
        "Topics discovered in the conversations of a trailing window, one version per week.",
        topic_source(enriched.path[-1], stored),
        enriched,
        partitions,
    )
