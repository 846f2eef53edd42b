"""Progress of `conv-analytics run` and `demo` on the console."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from conv_analytics.runner import Progress, Stage


class ConsoleProgress(Progress):
    """A bar over the plan's steps on a terminal; elsewhere (logs, CI) one line per finished step."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.total = 0
        self.done = 0
        self.started: dict[str, float] = {}

    def planned(self, stages: Sequence[Stage], steps: int) -> None:
        self.total = steps
        for stage in stages:
            span = f" {stage.keys[0]}..{stage.keys[-1]} ({len(stage.keys)} partitions)" if stage.keys else ""
            click.echo(f"plan: {stage.name}{span}")
        if sys.stdout.isatty():
            self.bar = click.progressbar(length=steps, label="starting", show_pos=True, width=30)
            self.bar.__enter__()

    def step_started(self, stage: Stage, step: str) -> None:
        self.started[step] = time.perf_counter()
        if self.bar is not None:
            self.bar.label = f"{stage.name}: {step}"
            self.bar.render_progress()

    def step_finished(self, stage: Stage, step: str, ok: bool) -> None:
        self.done += 1
        seconds = time.perf_counter() - self.started.pop(step, time.perf_counter())
        if self.bar is not None:
            self.bar.update(1)
        else:
            state = "done" if ok else "FAILED"
            click.echo(f"[{self.done}/{self.total}] {stage.name}: {step} {state} in {seconds:.1f}s")

    def more_steps(self, stage: Stage, steps: int) -> None:
        self.total += steps
        if self.bar is not None:
            self.bar.length += steps

    def stage_finished(self, stage: Stage, seconds: float) -> None:
        if self.bar is not None and self.done >= self.total:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
