"""`conv-analytics enrich`: redaction, language and English translation of a JSONL file, the same
functions as the enrichment step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from conv_analytics.cli.categorize import read_jsonl
from conv_analytics.config import Config
from conv_analytics.translate.messages import KINDS, STATUSES

if TYPE_CHECKING:
    from conv_analytics.translate import MessageTranslator

ADDED_FIELDS = ("language", "language_confidence", "text_en", "translation")


def configured_translator(config: Config, **overrides: Any) -> MessageTranslator:
    """The translator of the settings, with any option the user gave on the command line instead."""
    from conv_analytics.translate import make_translator

    values = {
        "kind": config.translator,
        "url": config.translator_url,
        "api_key": config.translator_api_key,
        "required": config.translator_required,
        "cache_dir": config.translations_dir,
    }
    values.update({name: value for name, value in overrides.items() if value is not None})
    return make_translator(**values)


@click.command("enrich")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--text-field", default="text", show_default=True)
@click.option(
    "--translator",
    type=click.Choice(KINDS),
    default=None,
    help=f"Engine for non-English text (default: {Config.translator.env}).",
)
@click.option(
    "--translator-url",
    default=None,
    help=f"apertium-apy or LibreTranslate address (default: {Config.translator_url.env}); "
    "apertium without one runs the local pipe.",
)
@click.option(
    "--translator-api-key",
    default=None,
    help=f"LibreTranslate api_key (default: {Config.translator_api_key.env}).",
)
@click.option(
    "--translator-required/--translator-optional",
    default=None,
    help="Fail when the translator is down or slow, or leave those texts untranslated and count them "
    f"(default: {Config.translator_required.env}).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the translation cache, kept across runs (default: <home>/translations).",
)
@click.option("--batch-size", default=10_000, show_default=True, help="Records per pass.")
def enrich(
    input_path: Path,
    output_path: Path,
    text_field: str,
    translator: str | None,
    translator_url: str | None,
    translator_api_key: str | None,
    translator_required: bool | None,
    cache_dir: Path | None,
    batch_size: int,
) -> None:
    """Write each input record, in input order, with its text redacted and language,
    language_confidence, text_en and translation added.

    Bad lines (invalid JSON, not an object, no string text field) are reported with their line
    numbers on stderr, counted, and left out of the output.
    """
    from conv_analytics.text.language import detect_languages
    from conv_analytics.text.redact import redact_texts
    from conv_analytics.translate import TranslatorError

    if batch_size < 1:
        raise click.BadParameter("must be >= 1", param_hint="--batch-size")
    translate = configured_translator(
        Config.from_env(),
        kind=translator,
        url=translator_url,
        api_key=translator_api_key,
        required=translator_required,
        cache_dir=cache_dir,
    )
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
