"""Which run is writing which partitions of which asset in a home, so that two runs never write the same
partitions at once: the second stops at once and names the first.

A run claims an asset's partition range with a small file under the home's claims folder and holds an
exclusive `flock` on it for as long as it runs. The kernel drops that lock when the process ends, however
it ends (kill -9 included), so a dead run's claim is stale at once and the next claimant removes it; no
pid is trusted. A short lock per asset makes "look at the claims, then add mine" one step. Claims are
local to a machine: where runs of several machines share one lake, Dagster's concurrency pools (the
`pool=` of every asset that writes the lake) give the same guarantee.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from conv_analytics.io.errors import StoreError


class BusyError(StoreError):
    """Another live run is writing some of the same partitions."""


@dataclass(frozen=True)
class Claim:
    run_id: str
    asset: str
    first: str | None  # None: the whole asset (unpartitioned)
    last: str | None

    def overlaps(self, other: Claim) -> bool:
        if self.first is None or other.first is None or self.last is None or other.last is None:
            return True
        return self.first <= other.last and other.first <= self.last  # ISO dates compare as text

    @property
    def partitions(self) -> str:
        if self.first is None:
            return "(all of it)"
        return self.first if self.first == self.last else f"{self.first}..{self.last}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _held_by_a_live_process(path: Path) -> bool:
    """Whether some process holds the claim file's lock; False also when the file is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class Claims:
    """The claims of one process in the claims folder of a home; `release` (or process exit) ends them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: list[tuple[int, Path]] = []

    def claim(self, run_id: str, assets: Iterable[str], first: str | None, last: str | None) -> None:
        """Claim `first..last` of every asset for `run_id`, or raise BusyError naming the run that holds one."""
        try:
            for asset in sorted(set(assets)):
                self._claim_one(Claim(run_id, asset, first, last))
        except BaseException:
            self.release()
            raise

    def _claim_one(self, mine: Claim) -> None:
        folder = self.folder / mine.asset
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(self.folder / f"{mine.asset}.lock"):
            for path in sorted(folder.glob("*.json")):
                try:
                    other = Claim(**json.loads(path.read_text(encoding="utf-8")))
                except (OSError, ValueError, TypeError):
                    other = None  # a claim file cut short by a crash: stale if nobody holds it
                if other is not None and other.run_id == mine.run_id:
                    continue  # this run's own claim (another step process of it)
                if not _held_by_a_live_process(path):
                    path.unlink(missing_ok=True)
                elif other is not None and other.overlaps(mine):
                    raise BusyError(
                        f"another run (id {other.run_id}) is writing {other.asset} {other.partitions} "
                        f"in this home: wait for it to finish, or stop it"
                    )
            path = folder / f"{mine.run_id}-{os.getpid()}.json"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, json.dumps(asdict(mine)).encode())
            self._held.append((fd, path))

    def release(self) -> None:
        while self._held:
            fd, path = self._held.pop()
            path.unlink(missing_ok=True)
            os.close(fd)
