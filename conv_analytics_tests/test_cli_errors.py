"""Every failure a user fixes outside the code reaches the command line as one line naming the setting.

An invalid setting: exit code 2 from `demo`, `status`, `query` and `run`, and the last line of
`dagster asset materialize` names it, while `--help` and `config` still work. A stopped store, source
or translator: exit code 1, the line names the setting to fix, no traceback and no secret, unless
`--debug` asks for the traceback. The servers are real (private ones where a test stops them).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.sources.demo import write_demo
from conv_analytics_tests.conftest import REPO, require_server
from conv_analytics_tests.fault_proxy import FaultProxy
from conv_analytics_tests.nocodb_support import server as nocodb_server
from conv_analytics_tests.storage_support import PRIVATE_SECRET_KEY, SEAWEEDFS_PORTS, PrivateServer, free_port
from conv_analytics_tests.test_architecture import clean_environment

DAY = "2026-10-01"
# one invalid value per class of setting, with what the line must say a valid value looks like
INVALID = {
    Config.columns.env: ("{not json", "JSON like"),
    Config.start_date.env: ("2026-13-45", "a date YYYY-MM-DD"),
    Config.nocodb_page_size.env: ("abc", "a whole number of at least 1"),
    Config.nocodb_timeout_seconds.env: ("-1", "a number above 0"),
    Config.device.env: ("gpu", "auto, cpu or cuda"),
    Config.translator_required.env: ("maybe", "true or false"),
    Config.phone_regions.env: ("US,XX", "ISO 3166 region codes"),
}
COMMANDS = {
    "demo": ["demo", "--days", "1", "--end-date", DAY],
    "status": ["status"],
    "query": ["query", "SELECT 1"],
    "run": ["run", "--start-date", DAY, "--end-date", DAY],
}


def cli(home: Path, *args: str, wrapper: str = "", **settings: str) -> subprocess.CompletedProcess[str]:
    """`conv-analytics ARGS` in a fresh environment with `settings`; `wrapper` runs first in the process."""
    environment = clean_environment(home, **{Config.home.env: str(home), **settings})
    code = f"{wrapper}\nimport sys\nfrom conv_analytics.cli import main\nmain(sys.argv[1:], prog_name='conv-analytics')"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=environment, capture_output=True, text=True, timeout=600, cwd=home
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, *named: str) -> str:
    """The command ended with `code` and one error line, the last on stderr, naming each of `named`.

    Lines before it may only be notes a client gives while it waits (a NocoDB retry), never a traceback.
    """
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert [line for line in lines if line.startswith("Error")] == lines[-1:], lines
    assert all("retrying in" in line for line in lines[:-1]), lines
    assert lines[-1].startswith("Error: ") and all(name in lines[-1] for name in named), lines[-1]
    return lines[-1]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_invalid_settings_end_each_command_with_one_line_and_exit_code_2(command: str, tmp_path: Path) -> None:
    invalid = {name: value for name, (value, _) in INVALID.items()}
    line = assert_one_line(cli(tmp_path, *COMMANDS[command], **invalid), 2, *INVALID)
    assert all(expected in line for _, expected in INVALID.values()), line
    assert not (tmp_path / "lake").exists() and not (tmp_path / "source").exists()


@pytest.mark.parametrize("name", sorted(INVALID))
def test_each_invalid_setting_alone_is_named_by_every_command(name: str, tmp_path: Path) -> None:
    value, expected = INVALID[name]
    runner = CliRunner()
    for args in COMMANDS.values():
        result = runner.invoke(main, args, env={name: value, Config.home.env: str(tmp_path)})
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"Error: {name}={value!r} is not valid: expected {expected}"), result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_help_and_config_work_with_every_setting_invalid(tmp_path: Path) -> None:
    invalid = {name: value for name, (value, _) in INVALID.items()}
    assert cli(tmp_path, "--help", **invalid).returncode == 0
    shown = cli(tmp_path, "config", **invalid)
    assert shown.returncode == 0, shown.stderr
    marked = [line.split()[0] for line in shown.stdout.splitlines() if " INVALID: " in line]
    assert sorted(marked) == sorted(INVALID)


def test_dagster_cli_names_the_invalid_settings_on_its_last_line(tmp_path: Path) -> None:
    """Dagster's own CLI prints its traceback of the failed definitions load; its last line is ours."""
    invalid = {name: value for name, (value, _) in INVALID.items()}
    (tmp_path / "dagster").mkdir()
    environment = clean_environment(
        tmp_path, CONV_ANALYTICS_HOME=str(tmp_path), DAGSTER_HOME=str(tmp_path / "dagster"), **invalid
    )
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "conv_analytics.definitions"]
        + ["--select", "raw_messages", "--partition", DAY],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("conv_analytics.config.SettingError: ") and all(name in last for name in INVALID), last


# --- stopped servers -------------------------------------------------------------------------------

# run in the CLI's process first: the server stops as the first ParquetLake.<method> call begins
STOP_AT_FIRST = """
import os, subprocess, threading
from conv_analytics.io.lake import ParquetLake
_original, _lock, _stopped = ParquetLake.{method}, threading.Lock(), []
def _stop_first(self, *args, **kwargs):
    with _lock:
        if not _stopped:
            subprocess.run({stop!r}, env={{**os.environ, **{env!r}}}, check=True, capture_output=True)
            _stopped.append(True)
    return _original(self, *args, **kwargs)
ParquetLake.{method} = _stop_first
"""


def closed_address() -> str:
    """An address where a server ran and stopped: nothing answers there now."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def private_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServer]:
    s3 = PrivateServer("s3", free_port(SEAWEEDFS_PORTS), tmp_path_factory.mktemp("cli_s3"))
    s3.start()
    try:
        yield s3
    finally:
        s3.stop()


@pytest.fixture
def demo_home(tmp_path: Path) -> Path:
    """A home whose files source holds one small demo day; translation off unless a test turns it on."""
    write_demo(tmp_path / "source", date.fromisoformat(DAY), 1, per_day=4)
    return tmp_path


def run_day(home: Path, *options: str, wrapper: str = "", **settings: str) -> subprocess.CompletedProcess[str]:
    settings = {Config.translator.env: "none", Config.start_date.env: "2026-01-01", **settings}
    return cli(home, *options, "run", "--start-date", DAY, "--end-date", DAY, wrapper=wrapper, **settings)


def assert_no_secret(result: subprocess.CompletedProcess[str], secret: str) -> None:
    assert secret not in result.stdout + result.stderr


def s3_settings(s3: PrivateServer, prefix: str) -> dict[str, str]:
    exports = s3.exports()
    return {**{k: v for k, v in exports.items() if k != "S3_BUCKET"}, "S3_BUCKET": "private-lake", "S3_PREFIX": prefix}


@pytest.mark.integration
@pytest.mark.parametrize("method", ["write", "read"])
def test_s3_stopped_while_writing_or_reading_ends_the_run_with_one_line(
    method: str, private_s3: PrivateServer, demo_home: Path
) -> None:
    """S3 stops as the run writes its first partition (raw records) or first reads (the intent model
    loading them)."""
    private_s3.start()
    settings = s3_settings(private_s3, f"cli-{method}")
    stop = ["bash", str(REPO / "scripts" / "servers.d" / "s3.sh"), "stop"]
    server = {k: private_s3.env[k] for k in ("CONV_ANALYTICS_SERVERS_DIR", "CONV_ANALYTICS_S3_PORT")}
    wrapper = STOP_AT_FIRST.format(method=method, stop=stop, env=server)
    result = run_day(demo_home, wrapper=wrapper, **settings)
    line = assert_one_line(result, 1, Config.s3_endpoint_url.env, "unreachable")
    assert ("writing raw_" if method == "write" else "reading raw_messages") in line, line
    assert_no_secret(result, PRIVATE_SECRET_KEY)


@pytest.mark.integration
def test_s3_stopped_fails_status_and_query_with_one_line_and_debug_shows_the_traceback(
    private_s3: PrivateServer, tmp_path: Path
) -> None:
    private_s3.start()
    settings = s3_settings(private_s3, "cli-status")
    private_s3.stop()
    for args in (["status"], ["query", "SELECT 1"]):
        result = cli(tmp_path, *args, **settings)
        assert_one_line(result, 1, Config.s3_endpoint_url.env, "unreachable")
        assert_no_secret(result, PRIVATE_SECRET_KEY)
    debug = cli(tmp_path, "--debug", "status", **settings)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert Config.s3_endpoint_url.env in debug.stderr.strip().splitlines()[-1]
    assert_no_secret(debug, PRIVATE_SECRET_KEY)


@pytest.mark.integration
def test_mongodb_stopped_ends_the_run_with_one_line_without_the_password(demo_home: Path, tmp_path: Path) -> None:
    mongo = PrivateServer("mongodb", free_port(), tmp_path / "mongo")
    mongo.start()
    mongo.stop()
    port = mongo.env["CONV_ANALYTICS_MONGODB_PORT"]
    uri = f"mongodb://analyst:hunter2-secret@127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=2000"
    result = run_day(demo_home, **{Config.mongodb_uri.env: uri})
    assert_one_line(result, 1, Config.mongodb_uri.env, "unreachable", f"127.0.0.1:{port}")
    assert_no_secret(result, "hunter2-secret")


@pytest.mark.integration
def test_nocodb_stopped_or_refusing_the_token_ends_the_run_with_one_line(demo_home: Path) -> None:
    url, _ = nocodb_server()
    stopped_server = {Config.nocodb_url.env: closed_address(), Config.nocodb_max_retries.env: "1"}
    stopped = run_day(demo_home, **stopped_server, **{Config.nocodb_api_token.env: "tok-1"})
    assert_one_line(stopped, 1, Config.nocodb_url.env)
    bad_token = "not-a-token-but-a-secret"
    refused = run_day(demo_home, **{Config.nocodb_url.env: url, Config.nocodb_api_token.env: bad_token})
    assert_one_line(refused, 1, Config.nocodb_api_token.env)
    assert_no_secret(refused, bad_token)
    debug = run_day(demo_home, "--debug", **{Config.nocodb_url.env: url, Config.nocodb_api_token.env: bad_token})
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert Config.nocodb_api_token.env in debug.stderr.strip().splitlines()[-1]
    assert_no_secret(debug, bad_token)


@pytest.mark.integration
def test_required_translator_stopped_ends_the_run_with_one_line(demo_home: Path) -> None:
    with FaultProxy(require_server("CONV_ANALYTICS_TRANSLATOR_URL", "apertium-apy")) as proxy:
        url = proxy.url  # closed on leaving: its address answers nothing, like a stopped server
    settings = {
        Config.translator.env: "apertium",
        Config.translator_url.env: url,
        Config.translator_required.env: "true",
    }
    result = run_day(demo_home, **settings)
    assert_one_line(result, 1, Config.translator_url.env)


def test_a_home_or_lake_that_cannot_be_written_ends_the_run_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    home = run_day(tmp_path, **{Config.home.env: str(blocker / "home")})
    assert_one_line(home, 1, Config.home.env, "cannot be written")
    lake = run_day(tmp_path, **{Config.home.env: str(tmp_path / "home"), Config.lake_url.env: str(blocker / "lake")})
    assert_one_line(lake, 1, Config.lake_url.env, "cannot be written")


def test_a_setting_found_invalid_inside_a_step_ends_the_run_with_exit_code_2(demo_home: Path) -> None:
    """Pseudonyms without their key are found invalid where the ingest step needs the key: still exit 2."""
    result = run_day(demo_home, **{Config.pseudonymize_users.env: "true"})
    assert_one_line(result, 2, Config.pseudonym_key.env, "raw records")
