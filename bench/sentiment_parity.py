"""Parity and speed of `vader_compound` against vaderSentiment's own polarity_scores, same run.

Texts: TweetEval sentiment validation (2,000 tweets) and every DailyDialog validation message
(8,069). Parity: share of texts whose compound is within 1e-4 of
SentimentIntensityAnalyzer().polarity_scores(text)["compound"] (target >= 99.5 % each).
Speed: texts/s (wall clock) of both on the same texts, and CPU time per text (robust to a busy
machine); ours is timed warm (compile excluded, shown apart) over the texts repeated --repeat
times, with Numba's thread count set by --threads. vaderSentiment is single-threaded.

    .venv/bin/python bench/sentiment_parity.py [--threads 2] [--repeat 50] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOLERANCE = 1e-4


def shared_data() -> Path:
    return Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def corpora() -> dict[str, list[str]]:
    data = shared_data()
    tweets = [r["text"] for r in read_jsonl(data / "sentiment" / "tweeteval_val.jsonl")]
    dialog = read_jsonl(data / "dailydialog" / "validation.jsonl")
    messages = [m["text"] for r in dialog for m in r["messages"]]
    return {"tweeteval_val": tweets, "dailydialog_validation": messages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="Numba threads (default 2)")
    parser.add_argument("--repeat", type=int, default=50, help="times ours scores the texts")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--show", type=int, default=5, help="mismatches to print per corpus")
    args = parser.parse_args()

    import numba
    import pyarrow as pa
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from conv_analytics.categorize.sentiment import sentiment_labels, vader_compound

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    analyzer = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    vader_compound(["warm up: compile or load the cached kernel 😀"], device=args.device)
    print(f"kernel compile/load: {time.perf_counter() - started:.2f} s")
    print(f"device {args.device}, numba threads {numba.get_num_threads()}")

    all_texts: list[str] = []
    for name, texts in corpora().items():
        all_texts += texts
        reference = np.array([analyzer.polarity_scores(t)["compound"] for t in texts])
        ours = vader_compound(texts, device=args.device)
        diff = np.abs(ours - reference)
        within = diff <= TOLERANCE
        agree = np.array(sentiment_labels(ours).to_pylist()) == np.array(sentiment_labels(reference).to_pylist())
        print(
            f"{name}: {within.mean() * 100:.2f} % of {len(texts)} within {TOLERANCE:g} "
            f"(max |diff| {diff.max():.4g}); same label {agree.mean() * 100:.2f} %"
        )
        for i in np.flatnonzero(~within)[: args.show]:
            print(f"   ours {ours[i]:+.4f} vader {reference[i]:+.4f}  {texts[i][:100]!r}")

    vader_wall, vader_cpu = timed(lambda: [analyzer.polarity_scores(t) for t in all_texts])
    array = pa.array(all_texts * args.repeat, type=pa.large_string())
    ours_wall, ours_cpu = timed(lambda: vader_compound(array, device=args.device))
    vader_rate, ours_rate = len(all_texts) / vader_wall, len(array) / ours_wall
    vader_us, ours_us = vader_cpu / len(all_texts) * 1e6, ours_cpu / len(array) * 1e6
    print(f"vaderSentiment: {vader_rate:,.0f} texts/s wall, {vader_us:.2f} CPU-us/text ({len(all_texts)} texts)")
    print(f"ours:           {ours_rate:,.0f} texts/s wall, {ours_us:.3f} CPU-us/text ({len(array)} texts, Arrow)")
    print(f"speed-up:       {ours_rate / vader_rate:,.1f}x wall-clock; {vader_us / ours_us:,.1f}x per CPU-second")
    print(f"load average:   {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall figures shrink under load)")


def timed(work) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all this process's threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


if __name__ == "__main__":
    main()
