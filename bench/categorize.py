"""Throughput of Categorizer.predict (topic + intent + sentiment at once) on 2 cores, against
scikit-learn TF-IDF + LogisticRegression predict and vaderSentiment, measured in the same run.

Messages: DailyDialog train + validation messages, shuffled and repeated to --messages.
sklearn: TfidfVectorizer(ngram_range=(1, 2)) + LogisticRegression trained on DailyDialog acts,
predicting one label for the same messages. VADER: SentimentIntensityAnalyzer.polarity_scores,
timed on a --vader-sample of the messages and extrapolated per message (said in the output).

    .venv/bin/python bench/categorize.py [--messages 240000] [--device cpu]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "2")  # the target machine has 2 cores
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conv_analytics.categorize import Categorizer  # noqa: E402


def shared_data() -> Path:
    return Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")


def dailydialog(split: str) -> list[dict]:
    with (shared_data() / "dailydialog" / f"{split}.jsonl").open(encoding="utf-8") as handle:
        return [m for line in handle if line.strip() for m in json.loads(line)["messages"]]


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=240_000)
    parser.add_argument("--vader-sample", type=int, default=20_000)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    train_messages = dailydialog("train")
    pool = [m["text"] for m in train_messages] + [m["text"] for m in dailydialog("validation")]
    rng = np.random.default_rng(0)
    order = rng.permutation(np.resize(np.arange(len(pool)), args.messages))
    texts = [pool[i] for i in order]
    array = pa.array(texts, type=pa.large_string())
    mb = array.nbytes / 1e6
    print(f"{len(texts)} messages ({mb:.1f} MB of text), NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}")

    started = time.perf_counter()
    categorizer = Categorizer.load(device=args.device)
    categorizer.predict(array[:2000])  # compile / load the kernel caches
    print(f"Categorizer.load + warm-up: {time.perf_counter() - started:.1f}s on {categorizer.device}")
    ours = best_of(args.repeats, lambda: categorizer.predict(array))
    fused = categorizer.fused
    topic_intent = best_of(args.repeats, lambda: fused.predict_indices(array, categorizer.device)) if fused else None
    topic_only = best_of(args.repeats, lambda: categorizer.predict_topic(array))
    intent_only = best_of(args.repeats, lambda: categorizer.predict_intent(array))
    sentiment_only = best_of(args.repeats, lambda: categorizer.predict_sentiment(array))

    tracemalloc.start()
    categorizer.predict(array)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    baseline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
    baseline.fit([m["text"] for m in train_messages], [m["act"] for m in train_messages])
    sk = best_of(1, lambda: baseline.predict(texts))

    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    sample = texts[: args.vader_sample]
    vader_sample = best_of(1, lambda: [analyzer.polarity_scores(t) for t in sample])
    vader = vader_sample / len(sample) * len(texts)

    n = len(texts)
    rate = n / ours
    print()
    print(f"{'what':<44}{'seconds':>9}{'msgs/s':>12}")
    rows = [
        ("ours: topic + intent + sentiment", ours),
        *([("  ours: topic + intent (one fused pass)", topic_intent)] if topic_intent else []),
        ("  ours: topic only", topic_only),
        ("  ours: intent only", intent_only),
        ("  ours: sentiment only (vader_compound)", sentiment_only),
        ("sklearn TF-IDF+LR predict (one label)", sk),
        (f"vaderSentiment (timed on {len(sample)}, extrapolated)", vader),
    ]
    for name, seconds in rows:
        print(f"{name:<44}{seconds:>9.2f}{n / seconds:>12,.0f}")
    print()
    print(f"speed-up vs sklearn: {sk / ours:.1f}x (target >= 20x)")
    print(f"speed-up vs VADER:   {vader / ours:.1f}x (target >= 50x)")
    print(f"  sentiment part alone vs VADER: {vader / sentiment_only:.1f}x")
    print(f"ours: {rate:,.0f} messages/s, {mb / ours:.1f} MB/s of text")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (ours uses both cores, the references one)")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory: tracemalloc peak during one full predict {traced_peak / 1e6:.1f} MB "
        f"(Python/NumPy allocations); process max RSS {rss_mb:.0f} MB (includes sklearn and data)"
    )


if __name__ == "__main__":
    main()
