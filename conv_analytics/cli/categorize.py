"""`conv-analytics train` and `conv-analytics categorize`: fit models from labelled JSONL, label JSONL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import click

TASK_CHOICES = ("topic", "intent", "sentiment")
PREDICTED_FIELDS = (
    "topic",
    "topic_confidence",
    "intent",
    "intent_confidence",
    "sentiment",
    "sentiment_score",
)


def read_jsonl(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, record, None) for good lines, (line number, None, reason) for bad ones.

    Blank lines hold no record and are skipped. A record is bad when it is not valid UTF-8 JSON,
    not an object, or lacks a string value for a required field.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                yield number, None, f"not valid JSON: {exc}"
                continue
            if not isinstance(record, dict):
                yield number, None, f"expected a JSON object, got {type(record).__name__}"
                continue
            problem = next(
                (
                    f"field {name!r} is missing" if name not in record else f"field {name!r} is not a string"
                    for name in required
                    if not isinstance(record.get(name), str)
                ),
                None,
            )
            if problem:
                yield number, None, problem
            else:
                yield number, record, None


def _report_bad(number: int, reason: str) -> None:
    click.echo(f"line {number}: skipped, {reason}", err=True)


@click.command("train")
@click.option("--task", type=click.Choice(TASK_CHOICES), required=True, help="Which model to fit.")
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSONL of labelled records.",
)
@click.option(
    "--model-out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of models; the task's model goes to DIR/<task>/.",
)
@click.option("--text-field", default="text", show_default=True)
@click.option("--label-field", default="label", show_default=True)
@click.option("--holdout", default=0.2, show_default=True, help="Fraction held out for validation figures.")
@click.option("--c", "c", default=10.0, show_default=True, help="Inverse L2 strength (topic/intent).")
@click.option("--fallback", default="other", show_default=True, help="Label for texts the model cannot place.")
@click.option(
    "--abstain-threshold",
    default=0.0,
    show_default=True,
    help="Texts whose best probability is lower get the fallback label.",
)
@click.option(
    "--char-ngrams",
    default="3-5",
    show_default=True,
    help="Character n-grams of words besides word 1-2-grams: 'off', 'N' or 'N-M' (off is several times faster).",
)
@click.option("--bits", default=19, show_default=True, help="Hashed feature buckets per group: 2**bits.")
@click.option("--seed", default=0, show_default=True, help="Seed of the validation split.")
def train(
    task: str,
    input_path: Path,
    model_out: Path,
    text_field: str,
    label_field: str,
    holdout: float,
    c: float,
    fallback: str,
    abstain_threshold: float,
    char_ngrams: str,
    bits: int,
    seed: int,
) -> None:
    """Fit a model, print validation accuracy and macro-F1 on a held-out split, save the model
    refitted on all records. For sentiment only the two cut-offs on the VADER compound score
    are fitted (the scores themselves are VADER's)."""
    from conv_analytics.categorize import Categorizer
    from conv_analytics.categorize.features import FeatureSpec
    from conv_analytics.categorize.training import accuracy_and_macro_f1, holdout_split, parse_char_ngrams

    if not 0.0 <= holdout < 1.0:
        raise click.BadParameter("must be in [0, 1)", param_hint="--holdout")
    try:
        spec = FeatureSpec(bits=bits, **parse_char_ngrams(char_ngrams))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--char-ngrams/--bits") from exc
    texts: list[str] = []
    labels: list[str] = []
    bad = 0
    for number, record, reason in read_jsonl(input_path, (text_field, label_field)):
        if record is None:
            bad += 1
            _report_bad(number, reason)
            continue
        texts.append(record[text_field])
        labels.append(record[label_field])
    click.echo(f"read {len(texts)} records from {input_path} ({bad} bad lines skipped)")
    if len(set(labels)) < 2:
        raise click.ClickException(f"need at least two distinct labels in {label_field!r}, found {sorted(set(labels))}")

    options = (
        {} if task == "sentiment" else {"c": c, "fallback": fallback, "threshold": abstain_threshold, "spec": spec}
    )
    train_idx, valid_idx = holdout_split(labels, holdout, seed)
    if holdout > 0 and valid_idx.size:
        started = time.perf_counter()
        model = Categorizer.train(task, [texts[i] for i in train_idx], [labels[i] for i in train_idx], **options)
        fitted = time.perf_counter() - started
        predicted, _ = model.predict([texts[i] for i in valid_idx])
        accuracy, macro_f1 = accuracy_and_macro_f1([labels[i] for i in valid_idx], predicted.to_pylist())
        click.echo(
            f"validation ({valid_idx.size} held out, trained on {train_idx.size} in {fitted:.1f}s): "
            f"accuracy {accuracy:.4f}  macro-F1 {macro_f1:.4f}"
        )
    model = Categorizer.train(task, texts, labels, **options)
    if task == "sentiment":
        click.echo(
            f"sentiment: VADER compound scores kept; fitted cut-offs negative <= {model.negative_below:+.3f}, "
            f"positive >= {model.positive_above:+.3f}"
        )
    out = model.save(model_out)
    click.echo(f"saved {task} model trained on all {len(texts)} records to {out}")


@click.command("categorize")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder from `train` (default: the models setting, else the shipped defaults).",
)
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--batch-size", default=50_000, show_default=True, help="Records labelled per kernel call.")
def categorize(model_dir: Path | None, input_path: Path, output_path: Path, text_field: str, batch_size: int) -> None:
    """Write each input record with topic, intent and sentiment fields added, in input order.

    Bad lines (invalid JSON, not an object, no string text field) are reported with their line
    numbers on stderr, counted, and left out of the output.
    """
    from conv_analytics.categorize import Categorizer
    from conv_analytics.cli.enrich import configured_translator
    from conv_analytics.config import Config

    if batch_size < 1:
        raise click.BadParameter("must be >= 1", param_hint="--batch-size")
    config = Config.from_env()
    try:
        categorizer = Categorizer.load(model_dir or config.models, device=config.device, taxonomy_path=config.taxonomy)
        translator = configured_translator(config)
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    started = time.perf_counter()
    written = bad = 0
    batch: list[dict] = []

    def flush(out) -> int:
        table = categorizer.predict([record[text_field] for record in batch], translator)
        columns = {name: table.column(name).to_pylist() for name in PREDICTED_FIELDS}
        for i, record in enumerate(batch):
            for name in PREDICTED_FIELDS:
                record[name] = columns[name][i]
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count = len(batch)
        batch.clear()
        return count

    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("w", encoding="utf-8") as out:
        for number, record, reason in read_jsonl(input_path, (text_field,)):
            if record is None:
                bad += 1
                _report_bad(number, reason)
                continue
            batch.append(record)
            if len(batch) >= batch_size:
                written += flush(out)
        if batch:
            written += flush(out)
    elapsed = time.perf_counter() - started
    click.echo(
        f"wrote {written} records to {output_path} ({bad} bad lines skipped) in {elapsed:.2f}s on {categorizer.device}"
    )
