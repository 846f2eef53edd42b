"""The topic kernels give the same bits in the process that met them first on a machine as in every later
one: the parallel fastmath kernels run only as loaded from Numba's cache (topics_cpu.CacheLoaded), since
the freshly compiled ones sum in other orders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Fits a topic model on DailyDialog validation messages, assigns them, and prints a digest of both with
# what the process did with each kernel (loaded it from the cache: a hit; compiled it itself: a miss).
FIT = """
import hashlib, json, sys
from conv_analytics.categorize.kernels import topics_cpu
from conv_analytics.categorize.topics import fit

with open(sys.argv[1], encoding="utf-8") as handle:
    texts = [m["text"] for line in handle if line.strip() for m in json.loads(line)["messages"]]
model = fit(texts)
rows, scores = model.assign_rows(texts)
digest = hashlib.md5()  # the model's numbers and the assignment: its info holds the time of the fit
for array in (model.projection, model.centres, model.thresholds, model.idf, rows, scores):
    digest.update(array.tobytes())
stats = {}
for name in ("embed", "assign", "assign_embedded"):
    counts = getattr(topics_cpu, name).dispatcher.stats
    stats[name] = [sum(counts.cache_hits.values()), sum(counts.cache_misses.values())]
print(json.dumps({"digest": digest.hexdigest(), "stats": stats}))
"""


def fit_in_process(messages: Path, cache: Path) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", FIT, str(messages)], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_first_process_fits_what_the_next_ones_fit(shared_data: Path, tmp_path: Path) -> None:
    messages = shared_data / "dailydialog" / "validation.jsonl"
    cache = tmp_path / "numba-cache"  # empty: the first process finds no kernel there
    first = fit_in_process(messages, cache)
    second = fit_in_process(messages, cache)
    assert first["digest"] == second["digest"]
    for name in ("embed", "assign", "assign_embedded"):
        # hits >= 1 and no miss: neither process ran a kernel it compiled itself
        assert first["stats"][name][0] >= 1 and first["stats"][name][1] == 0, first["stats"]
        assert second["stats"][name] == first["stats"][name], second["stats"]
    cached = {p.name.split("-")[0] for p in cache.rglob("*.nbi")}
    assert {"topics_cpu.embed", "topics_cpu.assign", "topics_cpu.assign_embedded"} <= cached, cached
