"""Redaction throughput with maintained validators, against the regex version it replaced, in one run.

The reference is `conv_analytics/text/redact.py` as of commit 82abeda (hand-written patterns only),
read from git and imported under another name, so both run in the same process on the same texts:

- DailyDialog: the `text` of every message of the validation and train splits, as they are
  (about 6 % hold a digit, '@' or '/'). Budget: the new version at most 2x the reference's time.
- PII-dense: a seeded synthetic mix in which every message holds personal data or a number that
  must stay (phone numbers of every default region, IBANs, SSNs, cards, IPs, e-mails, URLs,
  prices, dates, order numbers): the worst case, where every text reaches the validators.

Timed in chunks of --chunk messages, the two versions alternating chunk by chunk, each chunk's best
of --repeat rounds summed; the phone-number cache is emptied before every timed chunk, so a number
seen in an earlier round or chunk is not free.

    .venv/bin/python bench/redact.py [--repeat 5] [--chunk 5000]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
REFERENCE_COMMIT = "82abeda"


def shared_data() -> Path:
    return Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")


def dialog_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [m["text"] for line in f for m in json.loads(line)["messages"]]


def reference_module() -> ModuleType:
    """The regex-only redaction module of REFERENCE_COMMIT, imported from a temporary file."""
    source = subprocess.run(
        ["git", "show", f"{REFERENCE_COMMIT}:conv_analytics/text/redact.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    folder = Path(tempfile.mkdtemp(prefix="redact-reference-"))
    path = folder / "redact_reference.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("redact_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["redact_reference"] = module
    spec.loader.exec_module(module)
    return module


def pii_dense(n: int, seed: int = 7) -> list[str]:
    """Messages that each hold personal data or a number that must stay readable. The phone numbers'
    last four digits are drawn at random, so that few of them repeat (the matcher's cache would
    flatter a mix in which they do)."""
    rng = random.Random(seed)
    phones = [
        "(201) 555-{a}{b}", "+1 415 555 {a}{b}", "0121 234 {a}{b}", "+44 7400 12{a}{b}", "030/1234{a}{b}",
        "+49 151 2345{a}{b}", "06 12 34 {a} {b}", "+33 1 23 45 {a} {b}", "081234 5{a}{b}", "+91 98765 4{a}{b}",
        "612 34 {a} {b}", "+34 912 34 {a} {b}", "02 1234 {a}{b}", "+39 312 345 {a}{b}", "(11) 96123-{a}{b}",
        "+55 11 2345-{a}{b}", "0412 34{a} {b}", "+61 2 1234 {a}{b}",
    ]  # fmt: skip
    others = [
        "555-1234", "DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "FR1420041010050500013M02606",
        "536-90-4399", "536904399", "4111 1111 1111 1111", "192.168.1.10", "2001:db8::8a2e:370:7334",
        "anna.b@example.com", "https://example.com/reset?token=abc",
        "order #48213", "order no. 1234567", "$1,299.99", "2024-05-12 10:30", "12/05/2024", "version 3.11.7",
    ]  # fmt: skip

    def item() -> str:
        if rng.random() < 0.5:
            return rng.choice(phones).format(a=f"{rng.randrange(100):02d}", b=f"{rng.randrange(100):02d}")
        return rng.choice(others)

    lead = ["please call", "my details:", "send it to", "ok,", "Hi! the number is", "see"]
    return [f"{rng.choice(lead)} {item()} and {item()} thanks" for _ in range(n)]


def chunked_best(
    repeat: int, chunks: list[object], runs: dict[str, Callable[[object], object]], before: Callable[[], None]
) -> dict[str, float]:
    """Sum over chunks of each run's fastest time on that chunk, the runs alternating chunk by chunk
    over `repeat` rounds: a busy moment of a shared machine then hurts one chunk of both alike rather
    than one whole run."""
    best: dict[str, list[float]] = {name: [float("inf")] * len(chunks) for name in runs}
    for _ in range(repeat):
        for i, chunk in enumerate(chunks):
            for name, run in runs.items():
                before()
                started = time.perf_counter()
                run(chunk)
                best[name][i] = min(best[name][i], time.perf_counter() - started)
    return {name: sum(times) for name, times in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=5000, help="messages per timed chunk")
    args = parser.parse_args()
    import pyarrow as pa

    from conv_analytics.text.redact import _phone_matches, redact_texts

    reference = reference_module()
    data = shared_data() / "dailydialog"
    sets = {
        "DailyDialog validation + train": dialog_texts(data / "validation.jsonl") + dialog_texts(data / "train.jsonl"),
        "PII-dense synthetic mix": pii_dense(20_000),
    }
    for title, texts in sets.items():
        column = pa.array(texts, type=pa.large_string())
        chunks = [column.slice(i, args.chunk) for i in range(0, len(column), args.chunk)]
        best = chunked_best(
            args.repeat,
            chunks,
            {
                f"reference ({REFERENCE_COMMIT}, regexes)": reference.redact_texts,
                "validators (phonenumbers, stdnum)": redact_texts,
            },
            before=_phone_matches.cache_clear,
        )
        old, new = best.values()
        print(f"\n{title} ({len(texts):,} messages)")
        for name, seconds in best.items():
            print(f"  {name:<40} {len(texts) / seconds:>12,.0f} msgs/s")
        print(f"  cost of the validators: {new / old:.2f}x the reference's time")
        for name, run in (("reference", reference.redact_texts), ("validators", redact_texts)):
            _, counts = run(column)
            print(f"  {name:<10} redacted {int(counts.sum()):,} items in {int((counts > 0).sum()):,} messages")


if __name__ == "__main__":
    main()
