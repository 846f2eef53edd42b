"""`conv-analytics enrich`: redaction, language and English translation of a JSONL file, the same
functions as the enrichment step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

import click

from conv_analytics.cli.categorize import read_jsonl
from conv_analytics.translate.messages import KINDS, STATUSES, default_kind

ADDED_FIELDS = ("language", "language_confidence", "text_en", "translation")


@click.command("enrich")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--text-field", default="text", show_default=True)
@click.option(
    "--translator",
    type=click.Choice(KINDS),
    envvar="CONV_ANALYTICS_TRANSLATOR",
    default=default_kind,
    show_default="apertium when its pairs are installed, else none",
    help="Engine for non-English text [env CONV_ANALYTICS_TRANSLATOR].",
)
@click.option(
    "--translator-url",
    envvar="CONV_ANALYTICS_TRANSLATOR_URL",
    default=None,
    help="apertium-apy or LibreTranslate address; apertium without it runs the local pipe "
    "[env CONV_ANALYTICS_TRANSLATOR_URL].",
)
@click.option(
    "--translator-api-key",
    envvar="CONV_ANALYTICS_TRANSLATOR_API_KEY",
    default=None,
    show_default=False,
    help="LibreTranslate api_key [env CONV_ANALYTICS_TRANSLATOR_API_KEY].",
)
@click.option(
    "--translator-required/--translator-optional",
    envvar="CONV_ANALYTICS_TRANSLATOR_REQUIRED",
    default=True,
    show_default=True,
    help="Fail when the translator is down or slow, or leave those texts untranslated and count them "
    "[env CONV_ANALYTICS_TRANSLATOR_REQUIRED].",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".conv_analytics/translations"),
    show_default=True,
    help="Folder of the translation cache (kept across runs).",
)
@click.option("--batch-size", default=10_000, show_default=True, help="Records per pass.")
def enrich(
    input_path: Path,
    output_path: Path,
    text_field: str,
    translator: str,
    translator_url: str | None,
    translator_api_key: str | None,
    translator_required: bool,
    cache_dir: Path,
    batch_size: int,
) -> None:
    """Write each input record, in input order, with its text redacted and language,
    language_confidence, text_en and translation added.

    Bad lines (invalid JSON, not an object, no string text field) are reported with their line
    numbers on stderr, counted, and left out of the output.
    """
    from conv_analytics.text.language import detect_languages
    from conv_analytics.text.redact import redact_texts
    from conv_analytics.translate import TranslatorError, make_translator

    if batch_size < 1:
        raise click.BadParameter("must be >= 1", param_hint="--batch-size")
    try:
        translate = make_translator(translator, translator_url, translator_api_key, translator_required, cache_dir)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    counts = dict.fromkeys(STATUSES, 0)
    bad = 0
    batch: list[dict] = []

    def flush(out: TextIO) -> None:
        redacted = redact_texts([record[text_field] for record in batch])[0].to_pylist()
        languages, confidences = detect_languages(redacted)
        result = translate(redacted, languages)
        for i, record in enumerate(batch):
            record[text_field] = redacted[i]
            added = (languages[i], confidences[i], result.text_en[i], result.translation[i])
            record.update(zip(ADDED_FIELDS, added, strict=True))
            counts[result.translation[i]] += 1
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        batch.clear()

    try:
        with output_path.open("w", encoding="utf-8") as out:
            for number, record, reason in read_jsonl(input_path, (text_field,)):
                if record is None:
                    bad += 1
                    click.echo(f"line {number}: skipped, {reason}", err=True)
                    continue
                batch.append(record)
                if len(batch) >= batch_size:
                    flush(out)
            if batch:
                flush(out)
    except TranslatorError as exc:
        raise click.ClickException(str(exc)) from exc
    summary = ", ".join(f"{status} {n}" for status, n in counts.items())
    click.echo(f"wrote {sum(counts.values())} records to {output_path} ({bad} bad lines skipped); {summary}")
