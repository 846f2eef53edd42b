"""Parity of vader_compound with vaderSentiment on the shared public data (validation splits).

Target: compound within 1e-4 of polarity_scores(text)["compound"] for >= 99.5 % of TweetEval
validation tweets and of every DailyDialog validation message. Skipped when the data is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from conv_analytics.categorize.sentiment import vader_compound

DATA = Path(
    os.environ.get("CONV_ANALYTICS_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
TWEETS = DATA / "sentiment" / "tweeteval_val.jsonl"
DIALOG = DATA / "dailydialog" / "validation.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (set CONV_ANALYTICS_SHARED_DATA)")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def parity_rate(texts: list[str]) -> float:
    analyzer = SentimentIntensityAnalyzer()
    expected = np.array([analyzer.polarity_scores(t)["compound"] for t in texts])
    ours = vader_compound(texts, device="cpu")
    return float(np.mean(np.abs(ours - expected) <= 1e-4))


def test_tweeteval_validation_parity() -> None:
    texts = [r["text"] for r in read_jsonl(TWEETS)]
    assert len(texts) == 2000
    assert parity_rate(texts) >= 0.995


def test_dailydialog_validation_parity() -> None:
    texts = [m["text"] for r in read_jsonl(DIALOG) for m in r["messages"]]
    assert len(texts) == 8069
    assert parity_rate(texts) >= 0.995
