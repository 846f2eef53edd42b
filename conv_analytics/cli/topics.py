"""`conv-analytics topics discover` and `topics export`: find topics in a JSONL file, write the taxonomy YAML."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from conv_analytics.categorize.topics import TopicModel
from conv_analytics.cli.categorize import read_jsonl
from conv_analytics.config import Config


def _topics_setting(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        raise click.BadParameter(f"expected 'auto' or a positive integer, got {value!r}") from None
    if number < 1:
        raise click.BadParameter(f"expected 'auto' or a positive integer, got {value!r}")
    return number


@click.group("topics")
def topics() -> None:
    """Topics discovered from the conversations themselves, without labels."""


@topics.command("discover")
@click.option("--input", "input_path", type=click.Path(path_type=Path), required=True, help="JSONL, one record a line.")
@click.option("--output", "output_path", type=click.Path(path_type=Path), required=True, help="JSONL written.")
@click.option("--text-field", default="text", show_default=True)
@click.option(
    "--id-field",
    default="id",
    show_default=True,
    help="Field naming each record: the ids of each topic's most typical records are printed.",
)
@click.option("--topics", "n_topics", default="auto", show_default=True, help="'auto' or a number of topics.")
@click.option("--model-out", type=click.Path(path_type=Path), help="Folder to save the fitted model in.")
def discover(
    input_path: Path, output_path: Path, text_field: str, id_field: str, n_topics: str, model_out: Path | None
) -> None:
    """Fit topics on a JSONL file and write every good record, in input order, with its topic."""
    from conv_analytics.categorize.topics import fit_assign

    setting = _topics_setting(n_topics)
    if not input_path.is_file():
        raise click.ClickException(f"input file {input_path} does not exist")
    records: list[dict] = []
    bad = 0
    for number, record, reason in read_jsonl(input_path, (text_field,)):
        if record is None:
            bad += 1
            click.echo(f"line {number}: skipped, {reason}", err=True)
        else:
            records.append(record)
    if bad and not records:
        raise click.ClickException(f"no usable records in {input_path}: {bad} malformed lines (see above)")
    model, table = fit_assign([r[text_field] for r in records], setting)
    ids = table.column("topic_id").to_pylist()
    labels = table.column("topic").to_pylist()
    scores = table.column("topic_score").to_pylist()
    try:
        with output_path.open("w", encoding="utf-8") as handle:
            for record, topic_id, label, score in zip(records, ids, labels, scores, strict=True):
                out = dict(record, topic_id=topic_id, topic=label, topic_score=round(score, 6))
                handle.write(json.dumps(out, ensure_ascii=False) + "\n")
        if model_out is not None:
            model.save(model_out)
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None
    shown = model.shown_topics()
    placed = sum(1 for i in ids if i >= 0)
    click.echo(f"{len(records)} records, {len(shown)} topics, {placed} placed, {len(records) - placed} other")
    if bad:
        click.echo(f"{bad} malformed lines skipped (listed above)")
    typical = _typical_ids(records, id_field, ids, scores)
    for topic in shown:
        keywords = ", ".join(k for k, _ in topic.keywords[:6])
        where = f"  e.g. {id_field} {', '.join(typical[topic.id])}" if typical.get(topic.id) else ""
        click.echo(f"{topic.id:>4}  {topic.size:>7}  {topic.label}  [{keywords}]{where}")


def _typical_ids(records: list[dict], id_field: str, ids: list[int], scores: list[float]) -> dict[int, list[str]]:
    """The id-field values of each topic's three highest-scoring records (records without one are skipped)."""
    best: dict[int, list[tuple[float, str]]] = {}
    for record, topic_id, score in zip(records, ids, scores, strict=True):
        if topic_id >= 0 and record.get(id_field) is not None:
            best.setdefault(topic_id, []).append((score, str(record[id_field])))
    return {t: [i for _, i in sorted(pairs, key=lambda p: -p[0])[:3]] for t, pairs in best.items()}


def _lake_versions(config: Config) -> tuple[TopicModel, TopicModel | None]:
    """The latest version of the discovered topics in the lake, and the one before it."""
    from conv_analytics.assets.topics import models_by_week
    from conv_analytics.definitions import Platform
    from conv_analytics.io.resources import lake_resource
    from conv_analytics.schemas import TOPIC_MODELS

    name = Platform.build(config).graph.topic_model.key.path[-1]
    lake = lake_resource(config).lake()
    keys = lake.keys(name)
    if not keys:
        raise click.ClickException(
            f"no topic model in the lake at {lake.url}: run `conv-analytics run` (or materialise {name}) first"
        )
    models = models_by_week(lake.read(name, keys[-2:], TOPIC_MODELS))
    weeks = sorted(models)
    if not weeks:
        raise click.ClickException(f"the latest {name} versions in {lake.url} had no texts to learn from")
    return models[weeks[-1]], models[weeks[-2]] if len(weeks) > 1 else None


@topics.command("export")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    help="Folder of a saved model (default: the lake's latest).",
)
@click.option("--output", "output_path", type=click.Path(path_type=Path), required=True, help="YAML written.")
def export(model_dir: Path | None, output_path: Path) -> None:
    """Write the topics as a taxonomy YAML (with the configured intent section) for an analyst to curate."""
    from conv_analytics.categorize.training import load_taxonomy

    config = Config.from_env()
    try:
        model = TopicModel.load(model_dir) if model_dir else _lake_versions(config)[0]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    base = load_taxonomy(config.taxonomy)
    taxonomy = model.to_taxonomy({"intent": base["intent"]})
    header = (
        "# Discovered topics. Rename a key to rename a topic, list several ids under one key to merge\n"
        f"# them, delete an entry to drop a topic; then point {Config.taxonomy.env} at this file.\n"
    )
    body = yaml.safe_dump(taxonomy, allow_unicode=True, sort_keys=False, width=120)
    try:
        output_path.write_text(header + body, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output_path}: {exc.strerror}") from None
    click.echo(f"{len(taxonomy['topic']['labels'])} topics written to {output_path}")


@topics.command("show")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(min=1), help="Topics listed.")
def show(limit: int) -> None:
    """The current discovered topics: id, label, conversations in the latest window, share and the change
    against the previous week's version (`new` for a topic that was not there)."""
    latest, previous = _lake_versions(Config.from_env())
    before = {t.id: t.size for t in previous.shown_topics()} if previous else {}
    shown = latest.shown_topics()
    total = sum(t.size for t in shown) or 1
    click.echo(f"{'id':>5}  {'conversations':>13}  {'share':>6}  {'change':>7}  label")
    for topic in shown[:limit]:
        change = f"{topic.size / before[topic.id] - 1:+.0%}" if before.get(topic.id) else "new"
        click.echo(f"{topic.id:>5}  {topic.size:>13,}  {topic.size / total:>6.1%}  {change:>7}  {topic.label}")
    if len(shown) > limit:
        click.echo(f"... and {len(shown) - limit} more")
