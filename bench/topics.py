"""Topic discovery quality and speed on 2 cores, against scikit-learn TF-IDF -> LSA -> KMeans
given the true number of labels, measured in the same run.

Sets (read from the shared data, never copied): Banking77 train, CLINC150 validation without
`oos`, MultiWOZ validation conversations with a single domain (user turns joined), DailyDialog
validation conversations (messages joined, gold = topic). Printed per set: NMI and ARI against
gold, coverage (share placed), topics chosen, seconds. Then ours at equal k against the peer on
the largest set (and on --scaled texts drawn from it), id stability over a window shifted 7 days, a
refit whose window brings new themes, and fit + assign of --million texts drawn from all four sets.

    .venv/bin/python bench/topics.py [--million 1000000] [--scaled 100000] [--sets banking77,clinc150,...]
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "2")  # the target machine has 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "2")
# One BLAS thread, and OpenMP threads that sleep rather than spin between parallel regions: on 2
# cores, BLAS and OpenMP pools spinning for each other cost more than the second BLAS thread
# gains. The peer runs under the same settings.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conv_analytics.categorize.topics import fit, fit_assign  # noqa: E402

WINDOW_DAYS = 28
SHIFT_DAYS = 7


def shared_data() -> Path:
    return Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")


def _records(relative: str) -> list[dict]:
    with (shared_data() / relative).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def banking77() -> tuple[list[str], list[str]]:
    rows = _records("intent/banking77_train.jsonl")
    return [r["text"] for r in rows], [r["label"] for r in rows]


def clinc150() -> tuple[list[str], list[str]]:
    rows = [r for r in _records("intent/clinc150_val.jsonl") if r["label"] != "oos"]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def multiwoz() -> tuple[list[str], list[str]]:
    rows = [r for r in _records("multiwoz/val.jsonl") if len(r["topic"]) == 1]
    texts = [" ".join(m["text"] for m in r["messages"] if m["speaker"] == "user") for r in rows]
    return texts, [r["topic"][0] for r in rows]


def dailydialog() -> tuple[list[str], list[str]]:
    rows = [r for r in _records("dailydialog/validation.jsonl") if r.get("topic")]
    return [" ".join(m["text"] for m in r["messages"]) for r in rows], [r["topic"] for r in rows]


SETS: dict[str, Callable[[], tuple[list[str], list[str]]]] = {
    "banking77": banking77,
    "clinc150": clinc150,
    "multiwoz": multiwoz,
    "dailydialog": dailydialog,
}


def peer(texts: list[str], k: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    matrix = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(texts)
    reduced = normalize(TruncatedSVD(100, random_state=0).fit_transform(matrix))
    return KMeans(k, random_state=0).fit_predict(reduced)


def timed(function: Callable, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def quality(names: list[str]) -> str:
    """Ours (auto) and the peer (true k) on each set; returns the name of the largest set."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    print(f"{'set':<12} {'texts':>6} {'gold':>5} | {'ours (auto)':^40} | {'peer (true k)':^26} | verdict")
    print(f"{'':<12} {'':>6} {'':>5} | {'NMI':>6} {'ARI':>6} {'cover':>6} {'topics':>6} {'s':>6} {'':>6} |"
          f" {'NMI':>6} {'ARI':>6} {'s':>6} {'':>5} |")  # fmt: skip
    largest, largest_n = "", 0
    for name in names:
        texts, gold = SETS[name]()
        k = len(set(gold))
        (model, table), ours_s = timed(fit_assign, texts, "auto")
        ids = table.column("topic_id").to_numpy()
        peer_labels, peer_s = timed(peer, texts, k)
        ours = (normalized_mutual_info_score(gold, ids), adjusted_rand_score(gold, ids))
        theirs = (normalized_mutual_info_score(gold, peer_labels), adjusted_rand_score(gold, peer_labels))
        coverage = float(np.mean(ids >= 0))
        ok = ours[0] >= theirs[0] and ours[1] >= theirs[1] and coverage >= 0.9
        print(
            f"{name:<12} {len(texts):>6} {k:>5} | {ours[0]:>6.3f} {ours[1]:>6.3f} {coverage:>6.3f}"
            f" {len(model.shown_topics()):>6} {ours_s:>6.2f} {'':>6} | {theirs[0]:>6.3f} {theirs[1]:>6.3f}"
            f" {peer_s:>6.2f} {'':>5} | {'ok' if ok else 'BELOW'}",
            flush=True,
        )
        for topic in model.shown_topics()[:5]:
            print(f"{'':<14}{topic.size:>6}  {topic.label}")
        if len(texts) > largest_n:
            largest, largest_n = name, len(texts)
    return largest


def equal_k(name: str, texts: list[str], k: int, repeats: int = 3, gold: list[str] | None = None) -> None:
    """Best of `repeats` runs each, alternating, so that load from other processes hits both alike;
    with `gold`, also the NMI and ARI of both at this k (of the last run, outside the timing)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ours_s, peer_s = [], []
    for _ in range(repeats):
        (_, table), seconds = timed(fit_assign, texts, k)
        ours_s.append(seconds)
        peer_labels, seconds = timed(peer, texts, k)
        peer_s.append(seconds)
    ours, theirs = min(ours_s), min(peer_s)
    print(
        f"equal k on {name} ({len(texts):,} texts, k={k}, fit + assign, best of {repeats}): ours {ours:.3f} s, "
        f"peer {theirs:.3f} s: ours {theirs / ours:.1f}x faster (target >= 10x)"
    )
    if gold is not None:
        ids = table.column("topic_id").to_numpy()
        print(
            f"  quality at k={k}: ours NMI {normalized_mutual_info_score(gold, ids):.3f} "
            f"ARI {adjusted_rand_score(gold, ids):.3f} coverage {np.mean(ids >= 0):.3f}, "
            f"peer NMI {normalized_mutual_info_score(gold, peer_labels):.3f} "
            f"ARI {adjusted_rand_score(gold, peer_labels):.3f}"
        )


def new_themes(seed: int = 0, held_out: int = 12) -> None:
    """A refit whose window brings themes the previous one lacked: Banking77 and CLINC150 together,
    `held_out` of their labels only in window B, the rest split into windows as in `stability`.
    Printed: the share of the new themes' texts the refit gives new ids, and of the other texts; the
    ids kept on the overlap; and the refit's time against a fresh fit of window B in the same run."""
    texts, gold = [], []
    for name in ("banking77", "clinc150"):
        set_texts, set_gold = SETS[name]()
        texts, gold = texts + set_texts, gold + set_gold
    rng = np.random.default_rng(seed)
    held = np.isin(gold, rng.choice(sorted(set(gold)), held_out, replace=False))
    days = rng.integers(WINDOW_DAYS + SHIFT_DAYS, size=len(texts))
    in_a, in_b = ~held & (days < WINDOW_DAYS), held | (days >= SHIFT_DAYS)
    first = fit([t for t, a in zip(texts, in_a, strict=True) if a])
    window_b = [t for t, b in zip(texts, in_b, strict=True) if b]
    second, refit_s = timed(first.refit, window_b)
    _, fit_s = timed(fit, window_b)
    on_new = np.isin(
        second.assign(window_b).column("topic_id").to_numpy(), list(set(second.topics) - set(first.topics))
    )
    new_theme = held[in_b]
    overlap = [t for t, a, b in zip(texts, in_a, in_b, strict=True) if a and b]
    kept = np.mean(
        first.assign(overlap).column("topic_id").to_numpy() == second.assign(overlap).column("topic_id").to_numpy()
    )
    print(
        f"new themes ({held_out} of {len(set(gold))} labels only in window B, {len(window_b):,} texts): "
        f"{np.mean(on_new[new_theme]):.3f} of their texts on new ids, {np.mean(on_new[~new_theme]):.3f} of the others; "
        f"{kept:.3f} of the overlap keep their id; refit {refit_s:.2f} s, a fresh fit of window B {fit_s:.2f} s "
        f"(refit / fit {refit_s / fit_s:.2f})"
    )


def perturbed(texts: list[str], n: int, seed: int = 0) -> list[str]:
    """n texts drawn from `texts`, each with a varying suffix word so that they are not all duplicates."""
    rng = np.random.default_rng(seed)
    extra = ["please", "thanks", "now", "today", "again", "asap", "urgent", "hello", ""]
    picks = rng.integers(len(texts), size=n)
    return [f"{texts[i]} {extra[j]}" for i, j in zip(picks, rng.integers(len(extra), size=n), strict=True)]


def million(n: int) -> None:
    """The shared texts of all four sets, drawn n times and perturbed."""
    texts = perturbed([t for name in SETS for t in SETS[name]()[0]], n)
    fit(texts[:1000])  # compile the kernels outside the timing
    (model, table), seconds = timed(fit_assign, texts, "auto")
    coverage = float(np.mean(table.column("topic_id").to_numpy() >= 0))
    print(
        f"\n{n:,} texts, fit + assign on 2 cores: {seconds:.1f} s (target <= 60 s), "
        f"{len(model.shown_topics())} topics, coverage {coverage:.3f}"
    )


def stability(name: str) -> None:
    """Texts get synthetic days; window B is window A shifted by 7 days; compare ids on the overlap."""
    texts, _ = SETS[name]()
    span = WINDOW_DAYS + SHIFT_DAYS
    days = np.random.default_rng(1).integers(span, size=len(texts))
    in_a = days < WINDOW_DAYS
    in_b = days >= SHIFT_DAYS
    first = fit([t for t, a in zip(texts, in_a, strict=True) if a])
    second = first.refit([t for t, b in zip(texts, in_b, strict=True) if b])
    overlap = [t for t, a, b in zip(texts, in_a, in_b, strict=True) if a and b]
    before = first.assign(overlap).column("topic_id").to_numpy()
    after = second.assign(overlap).column("topic_id").to_numpy()
    event = second.info["history"][-1]
    print(
        f"stability on {name}: {len(overlap)} texts in both windows, {np.mean(before == after):.3f} keep their "
        f"topic id (target >= 0.90); refit kept {len(event['kept'])} ids, {len(event['new'])} new, "
        f"{len(event['merges'])} merges, {len(event['splits'])} splits"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--million", type=int, default=1_000_000, help="texts to fit and assign (0 skips)")
    parser.add_argument(
        "--scaled", type=int, default=100_000, help="texts for a second equal-k timing on the largest set (0 skips)"
    )
    args = parser.parse_args()
    names = [s for s in args.sets.split(",") if s]
    fit(["warm up the kernels", "compile once before timing"] * 20)
    largest = quality(names)
    texts, gold = SETS[largest]()
    print()
    equal_k(largest, texts, len(set(gold)), gold=gold)
    if args.scaled:
        equal_k(f"{largest} drawn and perturbed", perturbed(texts, args.scaled), len(set(gold)), repeats=1)
    print()
    for name in names:
        stability(name)
    new_themes()
    if args.million:
        million(args.million)


if __name__ == "__main__":
    main()
