"""MongoDB with a user, a password and TLS: the project's MongoDB-protocol server started with
authentication and a self-signed certificate (scripts/servers.d/mongodb.sh), the platform writing to it
through the settings, and neither credential in any output: CLI output, logs, the Dagster event log and
compute logs, the lake, the reports, `config`, `status` and the alert of a failed run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote_plus

import dagster as dg
import pymongo
import pytest
from click.testing import CliRunner

from conv_analytics.alerts.sensor import build_failure_alert_sensor
from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.io.errors import StoreError
from conv_analytics.io.mongo import MongoLogin, MongoStore
from conv_analytics.runner import materialize_range
from conv_analytics_tests.storage_support import PrivateServer, free_port
from conv_analytics_tests.test_mongo_store import replace_day, rollup_rows
from conv_analytics_tests.webhook_support import Receiver

pytestmark = pytest.mark.integration

USER = "analyst-7c1e9"
PASSWORD = "Pa55 w/ord@mongo!7c1e"
WRONG_PASSWORD = "wrong-Pa55-4d2a"
DAY = datetime(2026, 11, 2, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The settings `scripts/servers env` prints for a private server with a user and TLS."""
    server = PrivateServer(
        "mongodb",
        free_port(),
        tmp_path_factory.mktemp("secured"),
        CONV_ANALYTICS_MONGODB_USER=USER,
        CONV_ANALYTICS_MONGODB_PASSWORD=PASSWORD,
        CONV_ANALYTICS_MONGODB_TLS="true",
    )
    server.start()
    try:
        yield server.exports()
    finally:
        server.stop()


def login(settings: dict[str, str], **changes: object) -> MongoLogin:
    values = {
        "user": settings[Config.mongodb_user.env],
        "password": settings[Config.mongodb_password.env],
        "auth_source": settings[Config.mongodb_auth_source.env],
        "tls": True,
        "tls_ca_file": settings[Config.mongodb_tls_ca_file.env],
        **changes,
    }
    return MongoLogin(**values)  # type: ignore[arg-type]


def test_the_script_starts_the_server_with_a_user_and_tls(secured: dict[str, str]) -> None:
    assert secured[Config.mongodb_user.env] == USER and secured[Config.mongodb_password.env] == PASSWORD
    uri, database = secured[Config.mongodb_uri.env], f"test_{uuid.uuid4().hex[:8]}"
    store = MongoStore(uri, database, 5000, login(secured))
    assert replace_day(store, DAY.date(), rollup_rows(DAY.date(), ["billing", "delivery"])) == 2
    # an anonymous client over TLS may not write, a wrong password is refused, plain text is reset
    anonymous = MongoStore(uri, database, 3000, login(secured, user="", password=""))
    with pytest.raises(StoreError, match="refused the credentials in MONGODB_URI"):
        replace_day(anonymous, DAY.date(), rollup_rows(DAY.date(), ["billing"]))
    wrong = MongoStore(uri, database, 3000, login(secured, password=WRONG_PASSWORD))
    with pytest.raises(StoreError, match="refused the credentials in MONGODB_USER / MONGODB_PASSWORD") as refused:
        wrong.ping()
    with pytest.raises(StoreError, match="see MONGODB_TLS"):
        MongoStore(uri, database, 3000, login(secured, tls=False, tls_ca_file="")).ping()
    with pytest.raises(StoreError, match="TLS handshake failed.*MONGODB_TLS_CA_FILE"):
        MongoStore(uri, database, 3000, login(secured, tls_ca_file="")).ping()
    for message in (str(refused.value),):
        assert USER not in message and PASSWORD not in message and WRONG_PASSWORD not in message
    store.db.client.drop_database(database)


def test_the_platform_uses_the_credentials_and_shows_them_nowhere(
    secured: dict[str, str],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "home"
    database = f"creds_{uuid.uuid4().hex[:8]}"
    env = {
        **secured,
        Config.home.env: str(home),
        Config.start_date.env: "2026-11-01",
        Config.mongodb_database.env: database,
        Config.translator.env: "none",
    }
    cli = CliRunner()
    outputs: list[str] = []
    demo = cli.invoke(main, ["demo", "--days", "2", "--per-day", "4", "--end-date", "2026-11-03"], env=env)
    assert demo.exit_code == 0, demo.output
    outputs.append(demo.output)
    for command in (["config"], ["status"]):
        shown = cli.invoke(main, command, env=env)
        assert shown.exit_code == 0, shown.output
        outputs.append(shown.output)
    assert f"{Config.mongodb_password.env}" in outputs[1]

    client = pymongo.MongoClient(secured[Config.mongodb_uri.env], **login(secured).client_options())
    lake_count = cli.invoke(
        main, ["query", "SELECT count(*) AS n FROM conversation_categories", "--format", "csv"], env=env
    )
    assert client[database]["conversations"].count_documents({}) == int(lake_count.output.split()[-1]) > 0

    # a run refused by MongoDB fails with one line, and the alert of that run carries no credential
    with Receiver() as receiver:
        bad = {**env, Config.mongodb_password.env: WRONG_PASSWORD, Config.alert_webhook_url.env: receiver.url}
        sensor = build_failure_alert_sensor(Config(bad))
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            cursor = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).cursor
            # the CLI checks MongoDB before it runs: one line, and no run
            failed = cli.invoke(main, ["run", "--start-date", "2026-11-02", "--end-date", "2026-11-02"], env=bad)
            assert failed.exit_code != 0
            assert "MONGODB_USER / MONGODB_PASSWORD" in failed.output
            # a run that meets the refusal itself (as one launched from the UI does) fails, and is alerted
            for name, value in bad.items():
                monkeypatch.setenv(name, value)
            with pytest.raises(Exception, match="MONGODB_USER / MONGODB_PASSWORD") as raised:
                materialize_range(Config(bad), [dg.AssetKey("enriched_messages")], ["2026-11-02"], instance=instance)
            sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert len(receiver.accepted) == 1
        assert "refused the credentials in MONGODB_USER / MONGODB_PASSWORD" in receiver.accepted[0]["text"]
        outputs += [failed.output, str(raised.value), receiver.bodies[0]]
    client.drop_database(database)

    captured = capfd.readouterr()
    texts = [*outputs, captured.out, captured.err, caplog.text]
    files = [path for path in home.rglob("*") if path.is_file()]
    assert any(path.suffix == ".db" for path in files)  # the Dagster instance's event log is searched too
    for secret in (USER, PASSWORD, quote_plus(PASSWORD), WRONG_PASSWORD):
        assert not [text for text in texts if secret in text], secret
        assert not [path for path in files if secret.encode() in path.read_bytes()], secret
