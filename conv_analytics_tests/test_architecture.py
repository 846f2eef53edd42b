"""The shape of the code: pure layers without Dagster, imports without side effects, one declaration per
setting and per asset name, every asset selectable alone, and `conv-analytics run` equal to the demo.

No `from __future__ import annotations` here: Dagster reads the type annotations of the assets below.
"""

import ast
import hashlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
from dagster_pandas import PandasColumn, create_dagster_pandas_dataframe_type

import conv_analytics
from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.frames import ConversationCategoriesFrame, RollupsFrame
from conv_analytics.io.manager import COLUMNS
from conv_analytics.schemas import CONVERSATION_CATEGORIES, ROLLUPS
from conv_analytics.sources.demo import write_demo
from conv_analytics_tests.conftest import REPO
from conv_analytics_tests.platform_support import IN_PROCESS

PACKAGE = Path(conv_analytics.__file__).parent
CLI = [sys.executable, "-m", "conv_analytics.cli"]


def pure_modules() -> list[str]:
    """Every module of the layers that must not need Dagster: analytics, text, translate, categorize (but its
    resource), the date helpers and the source clients."""
    names = ["conv_analytics.dates", "conv_analytics.sources.base", "conv_analytics.sources.files"]
    names += ["conv_analytics.sources.demo", "conv_analytics.sources.public"]
    names += ["conv_analytics.nocodb.client", "conv_analytics.nocodb.source"]
    for package in ("analytics", "text", "translate", "categorize"):
        path = PACKAGE / package
        prefix = f"conv_analytics.{package}."
        names += [m.name for m in pkgutil.walk_packages([str(path)], prefix) if not m.name.endswith(".resource")]
    return names


def clean_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No setting of ours and no server: what a fresh shell on a new machine has, importing the code under
    test (this checkout, which an interpreter's editable install of another checkout would otherwise hide)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "SYSTEMROOT", "TMPDIR")}
    return {**keep, "HOME": str(tmp_path), "PYTHONPATH": str(REPO), **extra}


def test_pure_layers_load_no_dagster(tmp_path: Path) -> None:
    modules = pure_modules()
    assert "conv_analytics.analytics.rollups" in modules and "conv_analytics.categorize.categorizer" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=clean_environment(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"a pure module loads Dagster: {result.stdout}"


NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise AssertionError(f"network access: {args}")
socket.socket.connect = refuse
socket.create_connection = refuse
"""


def test_definitions_import_with_an_empty_environment_touches_no_network(tmp_path: Path) -> None:
    code = NO_NETWORK + (
        "import conv_analytics.definitions as d\n"
        "defs = d.defs()\n"
        "print(len(defs.resolve_asset_graph().get_all_asset_keys()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean_environment(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "12"
    assert not (tmp_path / ".conv_analytics").exists(), "loading the definitions wrote to the home folder"


def test_importing_reads_no_setting_and_a_bad_one_fails_on_use(tmp_path: Path) -> None:
    code = (
        "import conv_analytics.definitions as d, conv_analytics.cli, conv_analytics.runner\n"
        "try:\n"
        "    d.defs()\n"
        "except ValueError as exc:\n"
        "    print('ERROR', exc)\n"
    )
    environment = clean_environment(tmp_path, CONV_ANALYTICS_START_DATE="2026-13-45")
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "ERROR CONV_ANALYTICS_START_DATE='2026-13-45' is not valid: expected a date YYYY-MM-DD"
    )


def code_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module that are code, not documentation (docstrings left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_each_setting_variable_is_named_in_one_module_only() -> None:
    names = [s.env for s in Config.settings()]
    assert len(names) == len(set(names))
    found = [
        f"{path.relative_to(PACKAGE)}:{line} names {name}"
        for path in sources()
        if path.name != "config.py" or path.parent != PACKAGE
        for line, text in code_strings(path)
        for name in names
        if re.search(rf"\b{name}\b", text)
    ]
    assert not found, "read a setting's name from its declaration (Config.x.env):\n" + "\n".join(found)


def test_each_asset_name_is_written_only_in_its_own_definition() -> None:
    graph = Platform.build(Config()).graph
    owners: dict[str, Path] = {}
    for asset in graph.assets:
        module = sys.modules[asset.op.compute_fn.decorated_fn.__module__]  # type: ignore[union-attr]
        for key in asset.keys:
            owners[key.path[-1]] = Path(module.__file__ or "")
    assert len(owners) == 12
    found = [
        f"{path.relative_to(PACKAGE)}:{line} writes {name!r}"
        for path in sources()
        for line, text in code_strings(path)
        for name, owner in owners.items()
        if re.search(rf"\b{name}\b", text) and path != owner
    ]
    assert not found, "refer to an asset through its definition, not its name:\n" + "\n".join(found)


def lake_hashes(home: Path) -> dict[str, str]:
    lake = home / "lake"
    return {
        str(path.relative_to(lake)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(lake.rglob("*.parquet"))
    }


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(parents=True, exist_ok=True)
    environment = clean_environment(home, CONV_ANALYTICS_HOME=str(home))
    return subprocess.run([*CLI, *args], env=environment, capture_output=True, text=True, timeout=600, cwd=home)


def test_run_over_three_days_of_files_builds_the_demo_lake_and_shows_progress(tmp_path: Path) -> None:
    last = date(2026, 10, 5)  # a Monday: the days span two model weeks
    demo_home, run_home = tmp_path / "demo", tmp_path / "run"
    demo = cli(demo_home, "demo", "--days", "3", "--end-date", last.isoformat(), "--per-day", "15")
    assert demo.returncode == 0, demo.stderr
    shutil.copytree(demo_home / "source", run_home / "source")
    first = last - timedelta(days=2)
    run = cli(run_home, "run", "--start-date", first.isoformat(), "--end-date", (last + timedelta(days=1)).isoformat())
    assert run.returncode == 0, run.stderr
    progress = [line for line in run.stdout.splitlines() if line.startswith("[")]
    # the total grows when a stage takes more than one run (the raw records' first run is a week)
    total = int(progress[-1].split("/")[1].split("]")[0])
    assert len(progress) == total and progress[-1].startswith(f"[{total}/{total}] analytics report")
    assert any("enriched messages: enriched_messages done" in line for line in progress)
    assert any("topic model: topic_model done" in line for line in progress)
    assert "plan: raw records 2026-10-03..2026-10-06 (4 partitions)" in run.stdout
    # the model weeks of those days, from the Monday of the first day's week
    assert "plan: intent model 2026-09-28..2026-10-05 (2 partitions)" in run.stdout
    assert "plan: topic model 2026-09-28..2026-10-05 (2 partitions)" in run.stdout
    demo_lake, run_lake = lake_hashes(demo_home), lake_hashes(run_home)
    assert len(demo_lake) >= 40
    differing = sorted(k for k in demo_lake.keys() | run_lake.keys() if demo_lake.get(k) != run_lake.get(k))
    assert run_lake == demo_lake, differing


def test_any_single_asset_can_be_materialised_from_dagster_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_demo(Config(home=home).source_folder, date(2026, 10, 2), 3, per_day=10)
    environment = clean_environment(home, CONV_ANALYTICS_HOME=str(home), DAGSTER_HOME=str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    for name in ("raw_messages", "quarantined_conversations"):
        result = subprocess.run(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "conv_analytics.definitions"]
            + ["--select", name, "--partition", "2026-10-01", "--config-json", IN_PROCESS],
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    # the lake holds those two assets, and the id index of the raw table beside them (`_ids`)
    assert sorted(p.name for p in (home / "lake").iterdir()) == ["_ids", "quarantined_conversations", "raw_messages"]
    assert (home / "lake" / "raw_messages" / "date=2026-10-01" / "part-0.parquet").is_file()
    assert (home / "lake" / "_ids" / "raw_messages" / "date=2026-10-01" / "part-0.parquet").is_file()


def downstream_of(graph_asset: dg.AssetsDefinition, frame: dg.DagsterType) -> dg.AssetsDefinition:
    @dg.asset(
        ins={"rollups": dg.AssetIn(key=graph_asset.key)},
        partitions_def=graph_asset.partitions_def,
        io_manager_key="mem",
    )
    def team_asset(rollups: frame) -> int:  # type: ignore[valid-type]
        assert isinstance(rollups, pd.DataFrame)
        return int(rollups.loc[rollups["dimension"] == "all", "conversations"].sum())

    return team_asset


def test_downstream_assets_get_typed_pandas_frames(three_day_lake: Config) -> None:
    platform = Platform.build(three_day_lake)
    daily = platform.graph.rollups["day"]
    key = "2026-11-02"
    counted = dg.materialize(
        [*platform.graph.assets, downstream_of(daily, RollupsFrame)],
        selection=["team_asset"],
        partition_key=key,
        resources={**platform.resources, "mem": dg.InMemoryIOManager()},
    )
    assert counted.success
    conversations = counted.output_for_node("team_asset")
    assert conversations > 0
    table = platform.resources["lake"].lake().read(daily.key.path[-1], [key], ROLLUPS)
    assert conversations == sum(r["conversations"] for r in table.to_pylist() if r["dimension"] == "all")

    wrong = create_dagster_pandas_dataframe_type(name="Wrong", columns=[PandasColumn.exists("no_such_column")])
    failed = dg.materialize(
        [*platform.graph.assets, downstream_of(daily, wrong)],
        selection=["team_asset"],
        partition_key=key,
        resources={**platform.resources, "mem": dg.InMemoryIOManager()},
        raise_on_error=False,
    )
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    assert "no_such_column" in str(failure.step_failure_data.error.message)


def test_conversation_categories_load_as_a_typed_frame(three_day_lake: Config) -> None:
    platform = Platform.build(three_day_lake)
    categories = platform.graph.categories

    @dg.asset(
        ins={"conversations": dg.AssetIn(key=categories.key)},
        partitions_def=categories.partitions_def,
        io_manager_key="mem",
    )
    def escalated(conversations: ConversationCategoriesFrame) -> int:  # type: ignore[valid-type]
        assert str(conversations["started_at"].dt.tz) == "UTC"
        return int((conversations["status"] == "escalated").sum())

    result = dg.materialize(
        [*platform.graph.assets, escalated],
        selection=["escalated"],
        partition_key="2026-11-02",
        resources={**platform.resources, "mem": dg.InMemoryIOManager()},
    )
    assert result.success
    rows = platform.resources["lake"].lake().read(categories.key.path[-1], ["2026-11-02"], CONVERSATION_CATEGORIES)
    assert result.output_for_node("escalated") == rows.column("status").to_pylist().count("escalated")


def test_an_input_can_read_only_the_columns_it_names(three_day_lake: Config) -> None:
    platform = Platform.build(three_day_lake)
    daily = platform.graph.rollups["day"]

    def reading(columns: list[str]) -> dg.AssetsDefinition:
        @dg.asset(
            ins={"rollups": dg.AssetIn(key=daily.key, metadata={COLUMNS: columns})},
            partitions_def=daily.partitions_def,
            io_manager_key="mem",
        )
        def narrow(rollups: pa.Table) -> list[str]:
            return rollups.column_names

        return narrow

    def run(columns: list[str]) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [*platform.graph.assets, reading(columns)],
            selection=["narrow"],
            partition_key="2026-11-02",
            resources={**platform.resources, "mem": dg.InMemoryIOManager()},
            raise_on_error=False,
        )

    assert run(["value", "conversations"]).output_for_node("narrow") == ["value", "conversations"]
    failed = run(["conversations", "no_such_column"])
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "no_such_column" in message and "daily_rollups" in message and "\n" not in message.strip()


def test_upstream_assets_still_load_as_arrow_tables(three_day_lake: Config) -> None:
    platform = Platform.build(three_day_lake)
    daily = platform.graph.rollups["day"]

    @dg.asset(ins={"rollups": dg.AssetIn(key=daily.key)}, partitions_def=daily.partitions_def, io_manager_key="mem")
    def arrow_user(rollups: pa.Table) -> int:
        assert isinstance(rollups, pa.Table)
        return rollups.num_rows

    result = dg.materialize(
        [*platform.graph.assets, arrow_user],
        selection=["arrow_user"],
        partition_key="2026-11-02",
        resources={**platform.resources, "mem": dg.InMemoryIOManager()},
    )
    assert result.success and result.output_for_node("arrow_user") > 0


@pytest.mark.parametrize("command", [["--help"], ["config"], ["config", "--markdown"]])
def test_help_and_config_work_with_an_invalid_setting(tmp_path: Path, command: list[str]) -> None:
    environment = clean_environment(tmp_path, NOCODB_PAGE_SIZE="abc")
    result = subprocess.run(
        [*CLI, *command], env=environment, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    if command == ["config"]:
        assert "NOCODB_PAGE_SIZE                   INVALID: NOCODB_PAGE_SIZE='abc' is not valid" in result.stdout


def test_an_invalid_setting_stops_a_command_with_one_line_and_code_2(tmp_path: Path) -> None:
    environment = clean_environment(tmp_path, CONV_ANALYTICS_START_DATE="2026-13-45")
    result = subprocess.run(
        [*CLI, "status"], env=environment, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: CONV_ANALYTICS_START_DATE='2026-13-45' is not valid: expected a date YYYY-MM-DD"
    )
