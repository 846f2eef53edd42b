"""Does translating to English pay? VADER sentiment on UMSAB Spanish validation tweets, raw and
translated by Apertium (spa-eng), in the same run; and translation throughput.

Sentiment is the project's own (Categorizer.predict_sentiment: VADER's compound score with its
usual +-0.05 cut-offs). Throughput goes through translate_messages (redaction, batching; no
cache) with the local `apertium` pipe and, when CONV_ANALYTICS_TRANSLATOR_URL points at an
apertium-apy server (`scripts/servers start apertium`), with apy in batches and one request
per text. Target: macro-F1 with translation >= 0.50.

    .venv/bin/python bench/translate.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conv_analytics.categorize import Categorizer  # noqa: E402
from conv_analytics.categorize.training import accuracy_and_macro_f1  # noqa: E402
from conv_analytics.translate import ApertiumPipe, ApertiumServer, Translator, translate_messages  # noqa: E402


def load() -> tuple[list[str], list[str]]:
    shared = Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")
    with (shared / "umsab" / "es_validation.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return [r["text"] for r in records], [r["label"] for r in records]


def timed(translator: Translator, texts: list[str]) -> tuple[list[str | None], float]:
    started = time.perf_counter()
    result = translate_messages(texts, ["es"] * len(texts), translator)
    return result.text_en, len(texts) / (time.perf_counter() - started)


def one_request_per_text(server: ApertiumServer, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        server.translate([text], "es")
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    texts, labels = load()
    model = Categorizer.load()
    english, pipe_rate = timed(ApertiumPipe(), texts)
    untranslated = sum(e is None for e in english)
    scored = [e if e is not None else t for e, t in zip(english, texts, strict=True)]
    print(f"UMSAB Spanish validation: {len(texts)} tweets ({untranslated} left untranslated)")
    print(f"{'VADER on':<28} {'accuracy':>8} {'macro-F1':>8}")
    for name, inputs in (("raw Spanish", texts), ("Apertium spa-eng translation", scored)):
        predicted = model.predict_sentiment(inputs)[0].to_pylist()
        accuracy, macro_f1 = accuracy_and_macro_f1(labels, predicted)
        print(f"{name:<28} {accuracy:8.3f} {macro_f1:8.3f}")
    print(f"\n{'translation throughput':<40} {'texts/s':>8}")
    print(f"{'apertium pipe, batched':<40} {pipe_rate:8,.0f}")
    url = os.environ.get("CONV_ANALYTICS_TRANSLATOR_URL")
    if not url:
        print("apertium-apy: skipped (set CONV_ANALYTICS_TRANSLATOR_URL: scripts/servers start apertium)")
        return
    server = ApertiumServer(url)
    server.translate(texts[:5], "es")  # apy starts the pair's pipeline on first use
    apy_english, apy_rate = timed(server, texts)
    print(f"{'apertium-apy, batched':<40} {apy_rate:8,.0f}")
    print(f"{'apertium-apy, one request per text':<40} {one_request_per_text(server, texts):8,.0f}")
    same = sum(a == b for a, b in zip(apy_english, english, strict=True))
    print(f"apy and pipe translations identical: {same}/{len(texts)}")


if __name__ == "__main__":
    main()
