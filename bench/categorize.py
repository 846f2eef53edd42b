"""Throughput of Categorizer.predict (topic + intent + sentiment at once) on 2 cores, against
scikit-learn TF-IDF + LogisticRegression predict and vaderSentiment, measured in the same run.

Messages: DailyDialog train + validation messages, shuffled and repeated to --messages; then, the same
way, a held-out mix with non-ASCII chat: DailyDialog validation, TweetEval validation (tweets, emoji)
and the UMSAB validation tweets in eight languages (Arabic, Hindi, ...). Both figures are printed,
with their ratio (targets: within 1.5x of each other; >= 20x sklearn and >= 50x VADER on
DailyDialog, >= 15x and >= 35x on the mix).
sklearn: TfidfVectorizer(ngram_range=(1, 2)) + LogisticRegression trained on DailyDialog acts,
predicting one label for the same messages. VADER: SentimentIntensityAnalyzer.polarity_scores,
timed on a --vader-sample of the messages and extrapolated per message (said in the output). Every
timing but scikit-learn's (several seconds, where noise matters less) is the best of --repeats runs; ours
and VADER's take turns, so a busy spell of the machine cannot fall on one of them only.

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


def flat_texts(*paths: str) -> list[str]:
    texts = []
    for path in paths:
        with (shared_data() / path).open(encoding="utf-8") as handle:
            texts += [json.loads(line)["text"] for line in handle if line.strip()]
    return texts


def mix_texts() -> list[str]:
    """Held-out chat, tweets and tweets in other languages: none of it trains the categoriser."""
    umsab = sorted(str(p.relative_to(shared_data())) for p in (shared_data() / "umsab").glob("*_validation.jsonl"))
    return [m["text"] for m in dailydialog("validation")] + flat_texts("sentiment/tweeteval_val.jsonl", *umsab)


def repeated(pool: list[str], n: int) -> list[str]:
    """`pool` shuffled and repeated to n texts (the same order in every run)."""
    order = np.random.default_rng(0).permutation(np.resize(np.arange(len(pool)), n))
    return [pool[i] for i in order]


def best_of(repeats: int, *runs) -> list[float]:
    """The shortest time of each run over `repeats` rounds, the runs taking turns within a round, so
    that a busy spell of the machine falls on all of them alike."""
    times = [[] for _ in runs]
    for _ in range(repeats):
        for run, taken in zip(runs, times, strict=True):
            started = time.perf_counter()
            run()
            taken.append(time.perf_counter() - started)
    return [min(taken) for taken in times]


def measure(name: str, texts: list[str], categorizer: Categorizer, baseline, args) -> dict[str, float]:
    """Time ours, scikit-learn and VADER on the same texts and print the table; messages/s and ratios."""
    array = pa.array(texts, type=pa.large_string())
    mb = array.nbytes / 1e6
    share = sum(not t.isascii() for t in texts) / len(texts)
    print(f"\n== {name}: {len(texts)} messages ({mb:.1f} MB of text, {share:.0%} with non-ASCII characters)")
    categorizer.predict(array[:2000])  # compile / load the kernel caches
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    sample = texts[: args.vader_sample]
    ours, vader_sample = best_of(
        args.repeats, lambda: categorizer.predict(array), lambda: [analyzer.polarity_scores(t) for t in sample]
    )
    vader = vader_sample / len(sample) * len(texts)
    fused = categorizer.fused
    topic_intent = None
    if fused:
        [topic_intent] = best_of(args.repeats, lambda: fused.predict_indices(array, categorizer.device))
    [topic_only] = best_of(args.repeats, lambda: categorizer.predict_topic(array))
    [intent_only] = best_of(args.repeats, lambda: categorizer.predict_intent(array))
    [sentiment_only] = best_of(args.repeats, lambda: categorizer.predict_sentiment(array))
    [sk] = best_of(1, lambda: baseline.predict(texts))

    n = len(texts)
    print(f"{'what':<44}{'seconds':>9}{'msgs/s':>12}")
    rows = [
        ("ours: topic + intent + sentiment", ours),
        *([("  ours: topic + intent (one fused pass)", topic_intent)] if topic_intent else []),
        ("  ours: topic only", topic_only),
        ("  ours: intent only", intent_only),
        ("  ours: sentiment only (vader_compound)", sentiment_only),
        ("sklearn TF-IDF+LR predict (one label)", sk),
        (f"vaderSentiment (best of {args.repeats} on {len(sample)}, extrapolated)", vader),
    ]
    for what, seconds in rows:
        print(f"{what:<44}{seconds:>9.2f}{n / seconds:>12,.0f}")
    print(f"speed-up vs sklearn: {sk / ours:.1f}x (target >= {args.targets[name][0]}x)")
    print(f"speed-up vs VADER:   {vader / ours:.1f}x (target >= {args.targets[name][1]}x)")
    print(f"  sentiment part alone vs VADER: {vader / sentiment_only:.1f}x")
    print(f"ours: {n / ours:,.0f} messages/s, {mb / ours:.1f} MB/s of text")
    return {"rate": n / ours, "sklearn": sk / ours, "vader": vader / ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=240_000)
    parser.add_argument("--vader-sample", type=int, default=20_000)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.targets = {"DailyDialog": (20, 50), "held-out mix": (15, 35)}
    print(f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}")

    train_messages = dailydialog("train")
    pool = [m["text"] for m in train_messages] + [m["text"] for m in dailydialog("validation")]

    started = time.perf_counter()
    categorizer = Categorizer.load(device=args.device)
    print(f"Categorizer.load: {time.perf_counter() - started:.1f}s on {categorizer.device}")

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    baseline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
    baseline.fit([m["text"] for m in train_messages], [m["act"] for m in train_messages])

    plain = measure("DailyDialog", repeated(pool, args.messages), categorizer, baseline, args)
    tracemalloc.start()
    categorizer.predict(pa.array(repeated(pool, args.messages), type=pa.large_string()))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mixed = measure("held-out mix", repeated(mix_texts(), args.messages), categorizer, baseline, args)

    print()
    ratio = plain["rate"] / mixed["rate"]
    print(f"DailyDialog {plain['rate']:,.0f} vs mix {mixed['rate']:,.0f} messages/s: {ratio:.2f}x (target <= 1.5x)")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (ours uses both cores, the references one)")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory: tracemalloc peak during one full predict {traced_peak / 1e6:.1f} MB "
        f"(Python/NumPy allocations); process max RSS {rss_mb:.0f} MB (includes sklearn and data)"
    )


if __name__ == "__main__":
    main()
