"""`conv-analytics files load`: public conversation data as dated exports in the files source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click

from conv_analytics.config import Config


@click.group("files")
def files() -> None:
    """The files source: a folder of NocoDB-shaped JSONL/CSV exports (the source folder setting)."""


def public_data_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of every command that loads a public data set: file, first day, days, limit."""
    options = (
        click.option(
            "--input",
            "input_path",
            required=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="A JSONL file in the format of ../shared/data (DailyDialog, MultiWOZ).",
        ),
        click.option("--start-date", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC)."),
        click.option(
            "--days",
            default=7,
            show_default=True,
            type=click.IntRange(min=1),
            help="Conversations are spread evenly over this many days.",
        ),
        click.option("--limit", type=click.IntRange(min=1), help="Load only the first N conversations."),
    )
    for option in reversed(options):
        command = option(command)
    return command


@files.command("load")
@public_data_options
def load(input_path: Path, start_date: datetime, days: int, limit: int | None) -> None:
    """Write the conversations with generated users, channels and timestamps as dated exports, then
    `conv-analytics run` over those days builds everything from them."""
    from conv_analytics.sources.public import write_exports

    folder = Config.from_env().source_folder
    try:
        conversations, messages = write_exports(folder, input_path, start_date.date(), days, limit)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"wrote {conversations} conversations and {messages} messages from {input_path.name} "
        f"over {days} day(s) from {start_date.date().isoformat()} to {folder}"
    )
