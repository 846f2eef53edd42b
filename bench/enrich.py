"""How fast message text is redacted and enriched, against straightforward references run alongside.

Data: the `text` of every message of DailyDialog validation (8,069 messages); DailyDialog train
warms the caches, so the timed messages are unseen text. In one process, best of --repeat each,
the runs interleaved so a busy moment of a shared machine hurts them alike:

- redaction: `redact_texts` on a Python list and on an Arrow array, against the per-message
  reference: `redact_one` called on every message (no Arrow prefilter);
  on the messages as they are, and with an e-mail address and a phone number appended to
  every fifth message. Target: > 100,000 messages/s.
- enrichment: `enrich_texts` (language detection, tokenisation, lemmas), and with a language hint
  (no detection), against spaCy's plain route: `nlp.pipe` with the blank English pipeline, one Doc
  per message, each token's lemma looked up. The outputs of hint run and reference are compared.
  The first call in a fresh process (pipelines and lemma tables loading) is reported too.
- language: share of messages of >= 4 words detected as "en" in each English data set.

    .venv/bin/python bench/enrich.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")


def dialog_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [m["text"] for line in f for m in json.loads(line)["messages"]]


def flat_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def interleaved_best(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Fastest wall time of each run over `repeat` alternating rounds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: min(t) for name, t in times.items()}


def report(title: str, n: int, best: dict[str, float], reference: str) -> None:
    print(f"\n{title} ({n:,} messages)")
    for name, seconds in best.items():
        ratio = best[reference] / seconds
        print(f"  {name:<44} {n / seconds:>12,.0f} msgs/s   {ratio:5.2f} x reference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = shared_data()
    texts = dialog_texts(data / "dailydialog" / "validation.jsonl")
    train = dialog_texts(data / "dailydialog" / "train.jsonl")

    started = time.perf_counter()
    import pyarrow as pa
    import spacy

    from conv_analytics.text.enrich import chunk_tokenizer, enrich_texts
    from conv_analytics.text.language import detect_languages
    from conv_analytics.text.redact import redact_one, redact_texts

    imported = time.perf_counter()
    enrich_texts(texts)
    first = time.perf_counter()
    print(f"import {imported - started:.2f} s; first enrich_texts call {first - imported:.2f} s")

    # Redaction.
    # The same messages, every fifth with personal data appended (support chat has more of it).
    pii = [
        f"{t} mail me at user{i}@example.com or call +1 415 555 {i % 10_000:04d}" if i % 5 == 0 else t
        for i, t in enumerate(texts)
    ]
    for title, values in (("redaction", texts), ("redaction, 20% of messages with PII", pii)):
        column = pa.array(values, type=pa.large_string())

        def per_message_sub(values: list[str] = values) -> list[str]:
            return [redact_one(t)[0] for t in values]

        best = interleaved_best(
            args.repeat,
            {
                "reference: redact_one per message": per_message_sub,
                "redact_texts(list)": lambda values=values: redact_texts(values),
                "redact_texts(Arrow array)": lambda column=column: redact_texts(column),
            },
        )
        report(title, len(values), best, "reference: redact_one per message")
        redacted, counts = redact_texts(values)
        assert redacted.to_pylist() == per_message_sub()
        print(f"  {int(counts.sum())} items redacted in {int((counts > 0).sum())} messages")

    # Enrichment, caches warmed on unseen (train) text.
    enrich_texts(train[:20_000])
    hints = pa.array(["en"] * len(texts))
    nlp = spacy.blank("en")
    lemma = chunk_tokenizer("en").lemma

    def reference() -> tuple[list[int], list[str]]:
        counts, lemmas = [], []
        for doc in nlp.pipe(texts, batch_size=1000):
            words = [t for t in doc if not t.is_space]
            counts.append(len(words))
            lemmas.append(" ".join(w for w in (lemma(t.text, t.norm_) for t in words) if w))
        return counts, lemmas

    best = interleaved_best(
        args.repeat,
        {
            "reference: nlp.pipe, a Doc per message": reference,
            "enrich_texts": lambda: enrich_texts(texts),
            "enrich_texts(languages_hint='en')": lambda: enrich_texts(texts, hints),
            "detect_languages only": lambda: detect_languages(texts),
        },
    )
    report("enrichment", len(texts), best, "reference: nlp.pipe, a Doc per message")
    ours = enrich_texts(texts, hints)
    ref_counts, ref_lemmas = reference()
    same = sum(
        c == rc and lm == rl
        for c, lm, rc, rl in zip(
            ours.column("token_count").to_pylist(),
            ours.column("lemmas").to_pylist(),
            ref_counts,
            ref_lemmas,
            strict=True,
        )
    )
    print(f"  hint run equals reference (counts and lemmas) for {same:,}/{len(texts):,} messages")

    # Language identification.
    print('\nlanguage: messages of >= 4 words detected as "en"')
    sets = {
        "DailyDialog validation": texts,
        "DailyDialog train": train,
        "MultiWOZ val": dialog_texts(data / "multiwoz" / "val.jsonl"),
        "CLINC150 val": flat_texts(data / "intent" / "clinc150_val.jsonl"),
        "Banking77 train": flat_texts(data / "intent" / "banking77_train.jsonl"),
        "TweetEval val": flat_texts(data / "sentiment" / "tweeteval_val.jsonl"),
    }
    for name, values in sets.items():
        long = [t for t in values if len(re.findall(r"\S+", t)) >= 4]
        found = detect_languages(long)[0]
        en = found.count("en") / len(long)
        und = found.count("und") / len(long)
        print(f"  {name:<24} {len(long):>7,} messages   en {en:7.2%}   und {und:6.2%}")


if __name__ == "__main__":
    main()
