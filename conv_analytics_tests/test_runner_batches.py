"""A long range runs in batches of whole days (weeks, months), and writes what one run would."""

from __future__ import annotations

import gc
import hashlib
import weakref
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.runner import FIRST_BATCH_DAYS, DaySizes, Stage, materialize_days, next_batch, plan, run_stage
from conv_analytics.sources.demo import write_demo

DAYS = [(date(2026, 11, 2) + timedelta(days=i)).isoformat() for i in range(10)]


def test_days_are_taken_up_to_the_budget_and_at_least_one() -> None:
    sizes = DaySizes({day: 100 for day in DAYS})
    assert next_batch(DAYS, "day", sizes, 350) == DAYS[:3]
    assert next_batch(DAYS, "day", sizes, 50) == DAYS[:1]
    assert next_batch(DAYS, "day", sizes, 10_000) == DAYS


def test_uncounted_days_count_as_the_largest_and_nothing_counted_starts_with_a_week() -> None:
    assert next_batch(DAYS, "day", DaySizes({}), 1) == DAYS[:FIRST_BATCH_DAYS]
    sizes = DaySizes({DAYS[0]: 10, DAYS[1]: 300})
    assert sizes.of("day", DAYS[5]) == 300
    assert next_batch(DAYS, "day", sizes, 700) == DAYS[:3]


def test_weeks_and_months_weigh_all_their_days() -> None:
    sizes = DaySizes({(date(2026, 11, 1) + timedelta(days=i)).isoformat(): 10 for i in range(30)})
    assert sizes.of("week", "2026-11-02") == 70
    assert sizes.of("month", "2026-11-01") == 300
    assert next_batch(["2026-11-02", "2026-11-09", "2026-11-16"], "week", sizes, 150) == ["2026-11-02", "2026-11-09"]


def test_the_weekly_and_monthly_rollups_count_conversations_the_rest_messages(tmp_path: Path) -> None:
    """The period rollups read conversations only: counted by messages (about 5 a conversation), a busy
    range would run them one week at a time."""
    stages = plan(Platform.build(Config(home=tmp_path)), date(2026, 8, 1), date(2026, 10, 29))
    counted = {stage.name: stage.counted for stage in stages if stage.period}
    assert counted == {
        "raw records": "messages",
        "enriched messages": "messages",
        "categories and daily rollups": "messages",
        "weekly rollups": "conversations",
        "monthly rollups": "conversations",
    }
    weeks = next(stage for stage in stages if stage.name == "weekly rollups").keys
    days = [(date(2026, 8, 1) + timedelta(days=i)).isoformat() for i in range(90)]
    conversations, messages = DaySizes(dict.fromkeys(days, 6_900)), DaySizes(dict.fromkeys(days, 35_000))
    assert len(weeks) == 12
    assert len(next_batch(weeks, "week", messages, 400_000)) == 1
    assert len(next_batch(weeks, "week", conversations, 400_000)) == 8


def _lake_digest(config: Config) -> dict[str, str]:
    root = Path(config.lake_root)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batches_source")
    write_demo(folder, date.fromisoformat(DAYS[-1]), len(DAYS), per_day=6)
    return folder


def test_a_range_in_batches_writes_the_same_bytes_as_one_run(source: Path, tmp_path: Path) -> None:
    first, last = date.fromisoformat(DAYS[0]), date.fromisoformat(DAYS[-1]) + timedelta(days=1)
    runs, digests = {}, {}
    for budget in (1_000_000, 60):
        config = Config(
            home=tmp_path / str(budget), source_dir=source, start_date=date(2024, 1, 1), run_batch_messages=budget
        )
        summary = materialize_days(config, first, last)
        assert gc.get_freeze_count() == 0  # what was frozen between the runs is collectable again
        runs[budget] = {step.name: step.runs for step in summary.steps}
        digests[budget] = _lake_digest(config)
    # the raw records' first run takes a week (no day counted yet), then the rest fits one run
    assert runs[1_000_000] == {name: 2 if name == "raw records" else 1 for name in runs[1_000_000]}
    assert runs[60]["raw records"] > 1 and runs[60]["enriched messages"] > 1
    assert runs[60]["categories and daily rollups"] > 1
    assert digests[60] == digests[1_000_000]


class _Table:
    """Stands for a step's output table: something a weak reference can watch."""


class _Discarding(dg.ConfigurableIOManager):
    """Stores nothing, as if the output were written to the lake and dropped."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None: ...
    def load_input(self, context: dg.InputContext) -> None: ...


def test_a_run_keeps_no_step_output_in_memory() -> None:
    """A step's output is gone once it is stored, not held until the run ends (as `execute_in_process`
    holds it): the next step of the same run finds it collected."""
    outputs: list[weakref.ref] = []
    seen_by_next_step: list[bool] = []

    @dg.asset
    def first() -> _Table:
        table = _Table()
        outputs.append(weakref.ref(table))
        return table

    @dg.asset(deps=[first])
    def second() -> None:
        gc.collect()
        seen_by_next_step.append(outputs[0]() is not None)

    stage = Stage("two steps", [first.key, second.key], [])
    job = dg.Definitions(
        assets=[first, second],
        jobs=[dg.define_asset_job("two_steps", selection=stage.selection)],
        resources={"io_manager": _Discarding()},
        loggers={"progress": dg.colored_console_logger},  # run_stage configures a logger of this name
    ).resolve_job_def("two_steps")
    result = run_stage(job, stage, log_level=None)
    assert result.success and seen_by_next_step == [False]
