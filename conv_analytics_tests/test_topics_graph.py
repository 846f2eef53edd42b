"""Issue #11 through the graph: topics discovered from public conversations that the demo generator did not
write, loaded through the files source and materialised as `conv-analytics run` does.

- MultiWOZ validation over 14 days: the effective topic is rarely `other`, the discovered topics cover the
  conversations and the five largest are named by what people asked about; the week's report adds up
  and its topic section renders in Chromium.
- Five weeks of MultiWOZ with a burst of credit-card requests in the last week only: the refit a week later
  keeps the topic ids of the conversations both windows hold, and the new subject gets new ids that the
  week's report shows as emerging.
- An empty window and a single conversation; `topics show` and `topics export`, whose YAML curates the
  names of the next run.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner

from conv_analytics.analytics.report import build_report, load_inputs
from conv_analytics.categorize.topics import TopicModel
from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.io.lake import ParquetLake
from conv_analytics.runner import materialize_days
from conv_analytics.schemas import CONVERSATION_CATEGORIES, ENRICHED_MESSAGES, ROLLUPS, TOPIC_MODELS
from conv_analytics.sources.public import write_exports
from conv_analytics_tests.multiwoz_support import MULTIWOZ_WORDS, domains_named
from conv_analytics_tests.test_report_demo import open_in_chromium

START = date(2024, 1, 1)  # first partition
MULTIWOZ_FIRST = date(2025, 3, 3)  # a Monday: the 14 days are two whole ISO weeks
MULTIWOZ_DAYS = 14
MULTIWOZ_WEEKS = [MULTIWOZ_FIRST, MULTIWOZ_FIRST + timedelta(days=7)]
STEADY_FIRST = date(2025, 6, 2)  # a Monday: five whole weeks, so the last two windows are full of data
STEADY_DAYS = 35
WINDOW_DAYS = 28  # the default trailing window of a weekly refit
BURST_DOMAIN = "credit_cards"  # CLINC150: nothing like it in MultiWOZ
BURST_PER_INTENT = 10


# Words that name each MultiWOZ domain in a topic label, matched as whole words. Only words that say the
# domain to a reader: no place, station or venue names, and no words shared by domains (book, leave,
# price, area, visit, travel).
@dataclass(frozen=True)
class Lake:
    config: Config
    conversations: int  # written to the files source
    path: Path  # the public data set they came from


def _config(home: Path, **values: object) -> Config:
    return Config(home=home, start_date=START, **values)


def _lake(config: Config) -> ParquetLake:
    return ParquetLake.open(config.lake_root)


def _read(config: Config, asset: str, schema: pa.Schema, keys: list[str] | None = None) -> pa.Table:
    lake = _lake(config)
    return lake.read(asset, lake.keys(asset) if keys is None else keys, schema)


def _models(config: Config, asset: str = "topic_model") -> dict[date, TopicModel]:
    rows = _read(config, asset, TOPIC_MODELS).to_pylist()
    return {r["period_start"]: TopicModel.from_bytes(r["model"]) for r in rows}


def _conversation_texts(config: Config) -> list[tuple[str, date, str]]:
    """(conversation id, start day, its user messages in English where translated, in order), straight from
    the lake's categories and enriched messages: what a topic model reads of a conversation."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("categories", _read(config, "conversation_categories", CONVERSATION_CATEGORIES))
    con.register("messages", _read(config, "enriched_messages", ENRICHED_MESSAGES))
    return con.execute(
        """SELECT c.conversation_id, CAST(c.started_at AS DATE),
                  string_agg(coalesce(m.text_en, m.text), chr(10) ORDER BY m.sent_at, m.message_id)
           FROM categories c JOIN messages m ON m.conversation_id = c.conversation_id AND m.role = 'user'
           GROUP BY 1, 2 ORDER BY 1"""
    ).fetchall()


def _week_report(config: Config, week: date) -> dict:
    tables = Platform.build(config).graph.report_tables
    return build_report(load_inputs(_lake(config), tables, "week", week))


@pytest.fixture(scope="session")
def multiwoz(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """MultiWOZ validation written to the files source over two weeks, then the whole graph in process."""
    config = _config(tmp_path_factory.mktemp("multiwoz"))
    path = shared_data / "multiwoz" / "val.jsonl"
    conversations, _ = write_exports(config.source_folder, path, MULTIWOZ_FIRST, MULTIWOZ_DAYS)
    last = MULTIWOZ_FIRST + timedelta(days=MULTIWOZ_DAYS - 1)
    materialize_days(config, MULTIWOZ_FIRST, last, log_level="WARNING")
    return Lake(config, conversations, path)


def test_multiwoz_out_of_the_box_is_rarely_other_and_its_largest_topics_name_their_domains(multiwoz: Lake) -> None:
    categories = _read(multiwoz.config, "conversation_categories", CONVERSATION_CATEGORIES)
    assert categories.num_rows == multiwoz.conversations == 999
    topics = categories.column("topic").to_pylist()
    ids = categories.column("discovered_topic_id").to_pylist()
    labels = categories.column("discovered_topic").to_pylist()
    assert None not in ids and None not in labels  # every week has its model
    other = topics.count("other") / len(topics)
    coverage = sum(i != -1 for i in ids) / len(ids)
    gold = {
        str(record["conversation_id"]): record["topic"]
        for record in map(json.loads, multiwoz.path.read_text(encoding="utf-8").splitlines())
    }
    conversation_ids = categories.column("conversation_id").to_pylist()
    largest = Counter(label for i, label in zip(ids, labels, strict=True) if i != -1).most_common(6)
    print(f"\nMultiWOZ: effective topic other {other:.1%}, discovered coverage {coverage:.1%}")
    assert other <= 0.10
    assert coverage >= 0.90
    assert all((label == "other") == (i == -1) for i, label in zip(ids, labels, strict=True))
    # each of the six largest topics is named by a word of the domain most of its conversations are
    # about (the conversations span several domains), and together they name all five domains
    named = set()
    for label, count in largest:
        domains = [d for c, topic in zip(conversation_ids, labels, strict=True) if topic == label for d in gold[c]]
        majority = max(MULTIWOZ_WORDS, key=domains.count)
        print(f"  {count:>4}  {label:<50} mostly {majority}")
        assert majority in domains_named(label), (label, majority)
        named |= domains_named(label)
    assert named == set(MULTIWOZ_WORDS), [label for label, _ in largest]


def test_the_week_reports_topic_figures_add_up_to_the_weeks_conversations(multiwoz: Lake) -> None:
    categories = _read(multiwoz.config, "conversation_categories", CONVERSATION_CATEGORIES)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("categories", categories)
    for week in MULTIWOZ_WEEKS:
        report = _week_report(multiwoz.config, week)
        expected = dict(
            con.execute(
                """SELECT coalesce(discovered_topic, 'other'), count(*) FROM categories
                   WHERE CAST(started_at AS DATE) BETWEEN ? AND ? GROUP BY 1""",
                [week, week + timedelta(days=6)],
            ).fetchall()
        )
        total = next(k["value"] for k in report["kpis"] if k["name"] == "conversations")
        topics = report["discovered_topics"]
        assert total == sum(expected.values()) > 400
        assert sum(t["conversations"] for t in topics) + report["other_conversations"] == total
        assert {t["label"]: t["conversations"] for t in topics} | {"other": report["other_conversations"]} == (
            expected | {"other": expected.get("other", 0)}
        )
        assert abs(sum(t["share"] for t in topics) + report["other_share"] - 1.0) <= 1e-9
        assert all(t["share"] == t["conversations"] / total for t in topics)
        assert [t["conversations"] for t in topics] == sorted((t["conversations"] for t in topics), reverse=True)
        assert all(t["example"] for t in topics[:5])  # an example conversation for the largest topics


@pytest.mark.browser
def test_the_week_reports_topic_section_renders_in_chromium(multiwoz: Lake, tmp_path: Path) -> None:
    report = _week_report(multiwoz.config, MULTIWOZ_WEEKS[-1])
    dom, _ = open_in_chromium(report, tmp_path, 4000)
    section = re.search(r"<section><h2>What people talk about</h2>(.*?)</section>", dom, flags=re.S)
    assert section is not None, "no topic section in the DOM Chromium built"
    chart = re.search(r'<svg class="chart" data-chart="discovered_topics"(.*?)</svg>', section.group(1), flags=re.S)
    assert chart is not None and "no data" not in chart.group(1)
    shown = report["discovered_topics"][:12]
    assert chart.group(1).count('class="bar"') == len(shown) > 4
    assert all(html.escape(t["label"], quote=False) in section.group(1) for t in shown)


def _burst(shared_data: Path, folder: Path) -> list[str]:
    """A few requests of each CLINC150 intent of one domain, as a JSONL of one-message conversations."""
    per_intent: dict[str, list[str]] = {}
    with (shared_data / "intent" / "clinc150_val.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["domain"] == BURST_DOMAIN:
                per_intent.setdefault(record["label"], []).append(record["text"])
    texts = [text for group in per_intent.values() for text in group[:BURST_PER_INTENT]]
    rows = [
        {"conversation_id": f"burst-{i:04d}", "messages": [{"index": 0, "speaker": "user", "text": text}]}
        for i, text in enumerate(texts)
    ]
    (folder / "burst.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return texts


@dataclass(frozen=True)
class SteadyLake:
    config: Config
    weeks: list[date]
    burst: list[str]


@pytest.fixture(scope="session")
def steady(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> SteadyLake:
    """MultiWOZ over five weeks (each week's 28-day window full from the fourth week on), plus a burst of
    credit-card requests in the last week only; the whole graph in process, default settings."""
    home = tmp_path_factory.mktemp("steady")
    config = _config(home)
    write_exports(config.source_folder, shared_data / "multiwoz" / "val.jsonl", STEADY_FIRST, STEADY_DAYS)
    weeks = [STEADY_FIRST + timedelta(weeks=i) for i in range(STEADY_DAYS // 7)]
    burst = _burst(shared_data, home)
    write_exports(config.source_folder, home / "burst.jsonl", weeks[-1], 7)
    materialize_days(config, STEADY_FIRST, STEADY_FIRST + timedelta(days=STEADY_DAYS - 1), log_level="WARNING")
    return SteadyLake(config, weeks, burst)


def test_a_refit_a_week_later_keeps_the_topic_ids_of_the_conversations_both_windows_hold(steady: SteadyLake) -> None:
    before, after = steady.weeks[-2:]
    rows = {r["period_start"]: r for r in _read(steady.config, "topic_model", TOPIC_MODELS).to_pylist()}
    assert sorted(rows) == steady.weeks
    for week in (before, after):  # each version learnt from the 28 days up to its week's Sunday
        assert (rows[week]["window_start"], rows[week]["window_end"]) == (
            week + timedelta(days=6 - WINDOW_DAYS + 1),
            week + timedelta(days=6),
        )
    first, last = rows[after]["window_start"], rows[before]["window_end"]
    assert (last - first).days + 1 == WINDOW_DAYS - 7  # shifted by a week over the same data
    both = [(cid, text) for cid, day, text in _conversation_texts(steady.config) if first <= day <= last]
    assert len(both) > 500 and not any(cid.startswith("burst-") for cid, _ in both)
    models = _models(steady.config)
    texts = pa.array([text for _, text in both])
    old = models[before].assign(texts).column("topic_id").to_numpy()
    new = models[after].assign(texts).column("topic_id").to_numpy()
    kept = float(np.mean(old == new))
    print(
        f"\nrefit {before} -> {after}: {kept:.1%} of {len(both)} conversations in both windows keep their topic id "
        f"({len(models[before].shown_topics())} -> {len(models[after].shown_topics())} topics; "
        f"history {models[after].info.get('history', [])[-1:]})"
    )
    assert kept >= 0.90


def test_a_subject_only_in_the_later_window_gets_new_ids_and_shows_as_emerging(steady: SteadyLake) -> None:
    before, after = steady.weeks[-2:]
    models = _models(steady.config)
    earlier, later = models[before], models[after]
    ids = later.assign(pa.array(steady.burst)).column("topic_id").to_pylist()
    on_new = [i for i in ids if i != -1 and i not in earlier.topics]
    print(f"\nburst of {len(ids)} {BURST_DOMAIN} requests: topic ids {sorted(Counter(ids).items())}")
    print(f"  ids of the earlier version: {sorted(earlier.topics)}")
    assert len(on_new) >= 0.9 * len(ids)
    topic_id, size = Counter(on_new).most_common(1)[0]
    assert topic_id not in earlier.topics and topic_id in later.info["history"][-1]["new"]
    label = later.label_of(topic_id)
    assert label not in {t.label for t in earlier.topics.values()}
    report = _week_report(steady.config, after)
    by_label = {t["label"]: t for t in report["discovered_topics"]}
    for t in report["discovered_topics"]:
        flag = "emerging" if t["emerging"] else ""
        print(f"  {t['conversations']:>4} (before {t['previous']:>3}) {flag:8} {t['label']}")
    assert by_label[label]["emerging"] and by_label[label]["previous"] == 0 and by_label[label]["conversations"] >= size
    # the topics that were there the week before, at a steady volume, are not emerging
    steady_old = [t for t in report["discovered_topics"] if t["previous"] >= 20]
    assert len(steady_old) >= 3 and not any(t["emerging"] for t in steady_old)


def _single_text(config: Config) -> str:
    ((_, _, text),) = _conversation_texts(config)
    return text


def test_an_empty_window_and_a_single_conversation_go_through_the_graph(shared_data: Path, tmp_path: Path) -> None:
    """Week one has no conversation at all (its window is empty); week two one conversation on a Wednesday."""
    config = _config(tmp_path)
    first = date(2025, 9, 1)  # a Monday
    day = first + timedelta(days=9)
    assert write_exports(config.source_folder, shared_data / "multiwoz" / "val.jsonl", day, 1, limit=1)[0] == 1
    materialize_days(config, first, first + timedelta(days=13), log_level="WARNING")
    weeks = [first, first + timedelta(days=7)]
    for asset in ("intent_model", "topic_model"):
        rows = {r["period_start"]: r for r in _read(config, asset, TOPIC_MODELS).to_pylist()}
        assert sorted(rows) == weeks, asset
        assert rows[weeks[0]]["n_texts"] == 0 and rows[weeks[1]]["n_texts"] >= 1, asset
        empty, single = (TopicModel.from_bytes(rows[w]["model"]) for w in weeks)
        assert empty.shown_topics() == [] and len(single.shown_topics()) >= 1
        assigned = empty.assign(pa.array(["I need a hotel in the centre", ""])).to_pylist()
        assert [a["topic_id"] for a in assigned] == [-1, -1] and {a["topic"] for a in assigned} == {"other"}
    lake = _lake(config)
    assert len(lake.keys("conversation_categories")) == 14 and len(lake.keys("daily_rollups")) == 14
    categories = _read(config, "conversation_categories", CONVERSATION_CATEGORIES).to_pylist()
    assert len(categories) == 1
    (row,) = categories
    assert row["started_at"].date() == day and row["discovered_topic_id"] is not None
    assigned = _models(config)[weeks[1]].assign(pa.array([_single_text(config)])).to_pylist()
    assert (row["discovered_topic_id"], row["discovered_topic"]) == (assigned[0]["topic_id"], assigned[0]["topic"])
    weekly = _read(config, "weekly_rollups", ROLLUPS).to_pylist()
    assert {(r["period_start"], r["conversations"]) for r in weekly if r["dimension"] == "all"} == {
        (weeks[0], 0),
        (weeks[1], 1),
    }
    empty_week = _week_report(config, weeks[0])
    assert empty_week["discovered_topics"] == [] and empty_week["other_conversations"] == 0


def _cli(home: Path, *args: str, taxonomy: Path | None = None) -> str:
    env = {
        Config.home.env: str(home),
        Config.start_date.env: START.isoformat(),
        Config.taxonomy.env: str(taxonomy) if taxonomy else "",
    }
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_topics_show_and_export_and_the_curated_name_of_the_next_run(multiwoz: Lake, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(multiwoz.config.home, home)  # this test writes to its lake
    latest = _models(multiwoz.config)[MULTIWOZ_WEEKS[-1]]
    shown = latest.shown_topics()
    listing = _cli(home, "topics", "show")
    print("\n" + listing)
    for topic in shown:
        assert re.search(rf"^\s*{topic.id}\s+{topic.size:,}\s+.*\s{re.escape(topic.label)}$", listing, flags=re.M)

    exported = tmp_path / "topics.yaml"
    _cli(home, "topics", "export", "--output", str(exported))
    taxonomy = yaml.safe_load(exported.read_text(encoding="utf-8"))
    entries = taxonomy["topic"]["labels"]
    assert sorted(i for e in entries.values() for i in e["ids"]) == sorted(t.id for t in shown)
    assert all(e["keywords"] and e["examples"] for e in entries.values())
    assert taxonomy["intent"]["labels"]  # the configured intents come along

    # the analyst renames the largest topic; every other entry stays as exported
    old_name = next(name for name, e in entries.items() if e["ids"][0] == shown[0].id)
    renamed_id, new_name = shown[0].id, "places to stay (curated)"
    taxonomy["topic"]["labels"] = {(new_name if k == old_name else k): e for k, e in entries.items()}
    curated = tmp_path / "curated.yaml"
    curated.write_text(yaml.safe_dump(taxonomy, allow_unicode=True, sort_keys=False), encoding="utf-8")

    day = MULTIWOZ_WEEKS[-1] + timedelta(days=2)
    config = _config(home, taxonomy=curated)
    before = _read(config, "conversation_categories", CONVERSATION_CATEGORIES, [day.isoformat()]).to_pylist()
    materialize_days(config, day, day, log_level="WARNING")  # the next run, for one day
    after = _read(config, "conversation_categories", CONVERSATION_CATEGORIES, [day.isoformat()]).to_pylist()
    assert [r["conversation_id"] for r in after] == [r["conversation_id"] for r in before]
    assert [r["discovered_topic_id"] for r in after] == [r["discovered_topic_id"] for r in before]
    mine = [r for r in after if r["discovered_topic_id"] == renamed_id]
    assert mine and all(r["discovered_topic"] == new_name for r in mine)
    assert old_name not in {r["discovered_topic"] for r in after}
    others = {
        (r["discovered_topic_id"], r["discovered_topic"]) for r in after if r["discovered_topic_id"] != renamed_id
    }
    assert others == {
        (r["discovered_topic_id"], r["discovered_topic"]) for r in before if r["discovered_topic_id"] != renamed_id
    }
    relisted = _cli(home, "topics", "show", taxonomy=curated)
    assert re.search(rf"^\s*{renamed_id}\s+.*\s{re.escape(new_name)}$", relisted, flags=re.M)
    assert old_name not in relisted
