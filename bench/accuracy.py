"""Accuracy of the topic/intent models against a scikit-learn TF-IDF + LogisticRegression baseline.

Both are trained and scored in this run on the same texts:
  DailyDialog topic  conversation level (messages joined), train -> validation
  DailyDialog act    message level, train -> validation
  Banking77          5-fold cross-validation on banking77_train (there is no validation split)
  CLINC150           with oos, clinc150_train -> clinc150_val
Baseline: TfidfVectorizer(ngram_range=(1, 2)) + LogisticRegression(max_iter=1000), otherwise defaults.

    .venv/bin/python bench/accuracy.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conv_analytics.categorize.training import accuracy_and_macro_f1, fit_linear  # noqa: E402

Split = tuple[list[str], list[str]]


def shared_data() -> Path:
    return Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def dailydialog_topic(split: str) -> Split:
    records = read_jsonl(shared_data() / "dailydialog" / f"{split}.jsonl")
    kept = [r for r in records if r.get("topic")]
    return [" ".join(m["text"] for m in r["messages"]) for r in kept], [r["topic"] for r in kept]


def dailydialog_act(split: str) -> Split:
    records = read_jsonl(shared_data() / "dailydialog" / f"{split}.jsonl")
    messages = [m for r in records for m in r["messages"] if m.get("act")]
    return [m["text"] for m in messages], [m["act"] for m in messages]


def intent_file(name: str) -> Split:
    records = read_jsonl(shared_data() / "intent" / f"{name}.jsonl")
    return [r["text"] for r in records], [r["label"] for r in records]


def ours(train: Split, test_texts: list[str]) -> list[str]:
    model = fit_linear(train[0], train[1], task="bench", c=10.0)
    labels, _ = model.predict(test_texts)
    return labels.to_pylist()


def baseline(train: Split, test_texts: list[str]) -> list[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(max_iter=1000))
    pipeline.fit(train[0], train[1])
    return list(pipeline.predict(test_texts))


def train_test(load: Callable[[str], Split], train_name: str, test_name: str):
    train = load(train_name)
    test = load(test_name)
    return [(train, test)]


def kfold(data: Split, k: int = 5, seed: int = 0):
    """Shuffled k folds; every text is scored once, by the model that did not see it."""
    order = np.random.default_rng(seed).permutation(len(data[0]))
    folds = np.array_split(order, k)
    out = []
    for i in range(k):
        test_idx = folds[i]
        train_idx = np.concatenate([f for j, f in enumerate(folds) if j != i])
        pick = lambda idx: ([data[0][t] for t in idx], [data[1][t] for t in idx])  # noqa: E731
        out.append((pick(train_idx), pick(test_idx)))
    return out


DATASETS: dict[str, Callable[[], list[tuple[Split, Split]]]] = {
    "dailydialog_topic": lambda: train_test(dailydialog_topic, "train", "validation"),
    "dailydialog_act": lambda: train_test(dailydialog_act, "train", "validation"),
    "banking77_5fold": lambda: kfold(intent_file("banking77_train")),
    "clinc150_oos": lambda: train_test(intent_file, "clinc150_train", "clinc150_val"),
}


def evaluate(name: str) -> dict:
    runs = DATASETS[name]()
    row: dict = {"dataset": name, "n_test": sum(len(t[0]) for _, t in runs)}
    for system, predict in (("ours", ours), ("sklearn", baseline)):
        truth: list[str] = []
        predicted: list[str] = []
        started = time.perf_counter()
        for train, test in runs:
            predicted += predict(train, test[0])
            truth += test[1]
        row[system] = (*accuracy_and_macro_f1(truth, predicted), time.perf_counter() - started)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS), help="run only these datasets")
    args = parser.parse_args()
    names = args.only or list(DATASETS)
    header = (
        f"{'dataset':<20}{'n_test':>7}  {'ours acc':>8} {'ours F1':>8} {'sk acc':>8} {'sk F1':>8}"
        f"  {'ours s':>7} {'sk s':>7}"
    )
    print(header)
    print("-" * len(header))
    wins = 0
    for name in names:
        row = evaluate(name)
        (oa, of, ot), (sa, sf, st) = row["ours"], row["sklearn"]
        wins += oa >= sa and of >= sf
        print(
            f"{name:<20}{row['n_test']:>7}  {oa:>8.4f} {of:>8.4f} {sa:>8.4f} {sf:>8.4f}  {ot:>7.1f} {st:>7.1f}",
            flush=True,
        )
    print(f"ours >= sklearn on accuracy and macro-F1: {wins}/{len(names)} datasets (times: train+predict, seconds)")


if __name__ == "__main__":
    main()
