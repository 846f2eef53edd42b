"""`conv-analytics nocodb init|load`: prepare a NocoDB base and fill it with public conversations."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from conv_analytics.cli.files import public_data_options
from conv_analytics.config import Config
from conv_analytics.nocodb.client import NocoDBClient
from conv_analytics.nocodb.resource import NocoDBResource
from conv_analytics.nocodb.setup import Tables, ensure_tables, load_jsonl
from conv_analytics.resources import configured

DEFAULT_BASE = "conv_analytics"


def _tables(config: Config, base: str | None) -> tuple[NocoDBClient, Tables]:
    client = configured(NocoDBResource, config, env_var_secrets=False).client()
    tables = ensure_tables(
        client,
        base or config.nocodb_base or DEFAULT_BASE,
        config.nocodb_conversations_table,
        config.nocodb_messages_table,
    )
    return client, tables


@click.group("nocodb")
def nocodb() -> None:
    """Prepare and fill a NocoDB base (its URL, API token and base come from the NocoDB settings)."""


@nocodb.command("init")
@click.option("--base", help=f"Base id or title (default: {Config.nocodb_base.env}, else {DEFAULT_BASE!r}).")
def init(base: str | None) -> None:
    """Create the base and the conversations/messages tables where they are missing."""
    _, tables = _tables(Config.from_env(), base)
    click.echo(f"conversations table: {tables.conversations}")
    click.echo(f"messages table: {tables.messages}")
    click.echo(f"export {Config.nocodb_base.env}='{tables.base_id}'")


@nocodb.command("load")
@public_data_options
@click.option("--base", help=f"Base id or title (default: {Config.nocodb_base.env}, else {DEFAULT_BASE!r}).")
def load(input_path: Path, start_date: datetime, days: int, limit: int | None, base: str | None) -> None:
    """Load conversations with generated users, channels and timestamps (100 rows a request)."""
    start = start_date.date()
    client, tables = _tables(Config.from_env(), base)
    try:
        conversations, messages = load_jsonl(client, tables, input_path, start, days, limit)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"loaded {conversations} conversations and {messages} messages from {input_path.name} "
        f"over {days} day(s) from {start.isoformat()} into base {tables.base_id}"
    )
