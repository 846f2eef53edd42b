"""Discovered topics and intents: one model version per week, learnt from the organisation's own
conversations of a trailing window of days, kept in the lake with every earlier version.

Each week's fit starts from the previous week's model (`TopicModel.refit`), so a topic that is still
there keeps its id and label; new ids go to new topics only, and merges and splits are recorded in the
model. The topic model reads each conversation's user messages in English where a translation exists
(`enriched_messages`); the intent model reads the user messages one by one as they arrived
(`raw_messages`), since `enriched_messages` itself carries the discovered intent.
"""

from collections.abc import Callable, Iterator
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


class TopicDiscoveryResource(dg.ConfigurableResource):
    """How far back each weekly refit looks, and which topic and intent the rollups use."""

    window_days: int = setting_field(Config.topics_window_days)
    max_texts: int = setting_field(Config.topics_max_texts)
    topic_source: str = setting_field(Config.topic_source)


def _joined_runs(ids: pa.Array, texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """One row per run of equal consecutive ids: the id, and the run's texts one per line."""
    n = len(ids)
    first = np.ones(n, dtype=bool)
    if n > 1:
        first[1:] = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(first)
    runs = pa.ListArray.from_arrays(pa.array(np.append(starts, n), pa.int32()), texts)
    return ids.take(pa.array(starts)), pc.binary_join(runs, pa.scalar("\n", texts.type))


def _user_rows(day: pa.Table) -> pa.Table:
    return day.filter(pc.equal(day.column("role"), "user"))


def conversation_documents(day: pa.Table) -> pa.Table:
    """A day's conversations: each one's user messages of the day (in English where translated), one
    per line, by time."""
    user = _user_rows(day)
    ordered = pa.table(
        {
            "id": user.column("conversation_id"),
            "sent_at": user.column("sent_at"),
            "message_id": user.column("message_id"),
            "text": pc.coalesce(user.column("text_en"), user.column("text")),
        }
    ).sort_by([("id", "ascending"), ("sent_at", "ascending"), ("message_id", "ascending")])
    ids, texts = _joined_runs(ordered.column("id").combine_chunks(), ordered.column("text").combine_chunks())
    return pa.table({"id": ids, "text": texts})


def conversation_window(days: list[pa.Table]) -> pa.Array:
    """A window's conversations by id, each one's days joined in order (a day's messages all come
    before the next day's)."""
    parts = pa.concat_tables(
        table.select(["id", "text"]).append_column("day", pa.array(np.full(table.num_rows, position, np.int32)))
        for position, table in enumerate(days)
    ).sort_by([("id", "ascending"), ("day", "ascending")])
    return _joined_runs(parts.column("id").combine_chunks(), parts.column("text").combine_chunks())[1]


def message_documents(day: pa.Table) -> pa.Table:
    """A day's user messages, by time."""
    user = _user_rows(day)
    return pa.table(
        {"id": user.column("message_id"), "sent_at": user.column("sent_at"), "text": user.column("text")}
    ).sort_by([("sent_at", "ascending"), ("id", "ascending")])


def message_window(days: list[pa.Table]) -> pa.Array:
    """A window's user messages by time."""
    ordered = pa.concat_tables(days).sort_by([("sent_at", "ascending"), ("id", "ascending")])
    return ordered.column("text").combine_chunks()


@dataclass(frozen=True)
class ModelSource:
    """What a model learns from: the daily table it reads and the columns it needs; `documents`
    turns one day of it into its documents (id, text, and what orders them), `window` gives a
    window's texts in order from its days' documents."""

    table: str
    stored: StoredTable
    columns: tuple[str, ...]
    documents: Callable[[pa.Table], pa.Table]
    window: Callable[[list[pa.Table]], pa.Array]
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


@dataclass
class SampledDay:
    """A day's documents (`ModelSource.documents` and the md5 of each id) as a sampler keeps them: all
    of them, or only those up to `limit`, the (md5, id) of the last kept where the rest were left out."""

    documents: pa.Table
    limit: tuple[str, str] | None = None


def _up_to(table: pa.Table, last: tuple[str, str]) -> pa.Table:
    """The rows of `table` whose (hash, id) is at most `last`, in their order."""
    last_hash, last_id = last
    return table.filter(
        pc.or_(
            pc.less(table.column("hash"), last_hash),
            pc.and_(pc.equal(table.column("hash"), last_hash), pc.less_equal(table.column("id"), last_id)),
        )
    )


def _lowest(day: SampledDay, keep: int) -> SampledDay:
    """`day` with at most `keep` documents: those with the lowest (md5, id)."""
    documents = day.documents
    if documents.num_rows <= keep:
        return day
    last = pc.sort_indices(documents, [("hash", "ascending"), ("id", "ascending")])[keep - 1].as_py()
    limit = (documents.column("hash")[last].as_py(), documents.column("id")[last].as_py())
    return SampledDay(_up_to(documents, limit), limit)


class WindowSampler:
    """The documents of trailing windows of one source, one window after another (the weeks of a run):
    all of a window's documents, or, past `max_texts`, the `max_texts` whose ids hash lowest (md5: the
    same documents whatever the run, and mostly the same from one week's window to the next).

    Each day's documents are read once and kept while the windows still hold that day, so a weekly
    refit reads only the days its window adds (a 28-day window sliding a week: one day read in four).
    Of a busy day only its lowest-hashing documents are kept, twice its share of the sample (cut again as
    the window fills): a document the window keeps is among the lowest of its own day, so the sample is
    the same, and what is kept is about 2 x `max_texts` documents however busy the days. A day that turns
    out to be needed further (much busier than the window's others, or in a window with few documents)
    is read again whole."""

    def __init__(self, lake: ParquetLake, source: ModelSource, max_texts: int) -> None:
        self.lake, self.source, self.max_texts = lake, source, max_texts
        self.days: dict[str, SampledDay] = {}
        self.con = duckdb.connect()  # one for every window: a connection takes 20-40 ms to open

    def __enter__(self) -> "WindowSampler":
        return self

    def __exit__(self, *_: object) -> None:
        self.con.close()

    def texts(self, days: list[date]) -> pa.Array:
        """One text per document of the days of `days` that are in the lake, in the window's order."""
        present = set(self.lake.keys(self.source.table))
        keys = [d.isoformat() for d in days if d.isoformat() in present]
        share = -(-2 * self.max_texts // max(len(keys), 1))  # twice each day's share of the sample
        self.days = {key: _lowest(self.days[key] if key in self.days else self._read(key), share) for key in keys}
        if not self.days:
            return pa.array([], pa.string())
        while True:
            last = self._last_kept([day.documents for day in self.days.values()])
            # a day whose left-out documents could be among the window's lowest is read whole
            short = [
                key for key, day in self.days.items() if day.limit is not None and (last is None or day.limit < last)
            ]
            if not short:
                break
            for key in short:
                self.days[key] = self._read(key)
        tables = [day.documents for day in self.days.values()]
        if last is not None:
            tables = [_up_to(table, last) for table in tables]
        return self.source.window(tables).cast(pa.string())

    def _last_kept(self, tables: list[pa.Table]) -> tuple[str, str] | None:
        """(md5, id) of the last of the `max_texts` documents with the lowest (md5, id) among `tables`;
        None when they hold no more documents than that."""
        if sum(table.num_rows for table in tables) <= self.max_texts:  # a document is a row at least
            return None
        self.con.register("ids", pa.concat_tables(table.select(["id", "hash"]) for table in tables))
        try:
            ranked = self.con.sql(
                "SELECT id, hash FROM (SELECT DISTINCT id, hash FROM ids) ORDER BY hash, id LIMIT $limit",
                params={"limit": self.max_texts + 1},
            ).to_arrow_table()
        finally:
            self.con.unregister("ids")
        if ranked.num_rows <= self.max_texts:
            return None
        return ranked.column("hash")[-2].as_py(), ranked.column("id")[-2].as_py()

    def _read(self, key: str) -> SampledDay:
        """All of a day's documents."""
        source = self.source
        documents = source.documents(
            self.lake.read(source.table, [key], source.stored.schema, columns=list(source.columns))
        )
        self.con.register("documents", documents)
        try:
            hashes = self.con.sql("SELECT md5(id) AS hash FROM documents").to_arrow_table().column("hash")
        finally:
            self.con.unregister("documents")
        return SampledDay(documents.append_column("hash", hashes.combine_chunks()))


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
    with WindowSampler(lake, source, discovery.max_texts) as sampler:
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
    columns = ("role", "text", "sent_at", "message_id")
    return ModelSource(messages, stored, columns, message_documents, message_window, False)


def topic_source(enriched: str, stored: StoredTable) -> ModelSource:
    """The topic model's documents: each conversation's user messages (in English where translated)."""
    columns = ("conversation_id", "role", "text", "text_en", "sent_at", "message_id")
    return ModelSource(enriched, stored, columns, conversation_documents, conversation_window, True)


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
