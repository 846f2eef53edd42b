"""Messages to English: redact, look up the cache, translate what is new in batches, redact again.

`translate_messages` is what the enrichment step and the CLI call; `make_translator` builds
its translator and cache from the settings' values (it reads no environment itself).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from conv_analytics.text.language import UNDETERMINED, detect_languages
from conv_analytics.text.redact import CARD, EMAIL, PHONE, URL, redact_one, redact_texts
from conv_analytics.translate.cache import TranslationCache, text_hash
from conv_analytics.translate.engines import (
    ENGLISH,
    TRANSLATOR_SETTING,
    URL_SETTING,
    ApertiumPipe,
    ApertiumServer,
    LibreTranslate,
    Translator,
    TranslatorError,
)

# Values of the `translation` column.
NONE = "none"  # English, undetermined, nothing to translate, or no translator configured
TRANSLATED = "translated"
NO_PAIR = "no_pair"  # the translator has no pair from this language into English
FAILED = "failed"  # the translator was down or slow and CONV_ANALYTICS_TRANSLATOR_REQUIRED=false
STATUSES = (NONE, TRANSLATED, NO_PAIR, FAILED)
KINDS = ("none", "apertium", "libretranslate")

# One engine call carries at most this many texts and characters (a longer text goes alone).
BATCH_TEXTS = 500
BATCH_CHARS = 20_000

_LETTER = re.compile(r"[^\W\d_]")
# Redaction placeholders are English words that engines translate ("[CARD]" becomes "[THISTLE]"
# in cat-eng); private-use characters pass through every pair untouched and stand in for them.
_STAND_INS = {placeholder: chr(0xE001 + i) for i, placeholder in enumerate((EMAIL, PHONE, CARD, URL))}
_PRIVATE_USE = re.compile("[" + "".join(_STAND_INS.values()) + "]")


def _protect(text: str) -> str:
    text = _PRIVATE_USE.sub(" ", text.encode("utf-8", "replace").decode("utf-8"))  # lone surrogates -> "?"
    for placeholder, stand_in in _STAND_INS.items():
        text = text.replace(placeholder, stand_in)
    return text


def _restore(text: str) -> str:
    for placeholder, stand_in in _STAND_INS.items():
        text = text.replace(stand_in, placeholder)
    return redact_one(text)[0]


@dataclass
class Translations:
    """Per text: `text_en` (None unless translated) and `translation` status; plus counts."""

    text_en: list[str | None]
    translation: list[str]
    sent: int = 0  # distinct texts sent to the engine
    cached: int = 0  # distinct texts found in the cache
    failed: int = 0  # texts left untranslated because the translator failed
    errors: list[str] = field(default_factory=list)


def _batches(texts: list[str]) -> list[list[str]]:
    batches: list[list[str]] = []
    chars = 0
    for text in texts:
        if not batches or len(batches[-1]) >= BATCH_TEXTS or chars + len(text) > BATCH_CHARS:
            batches.append([])
            chars = 0
        batches[-1].append(text)
        chars += len(text)
    return batches


def _settle(result: Translations, rows: list[int], status: str, english: str | None = None) -> None:
    for i in rows:
        result.translation[i], result.text_en[i] = status, english


def _translate_language(
    language: str,
    by_text: dict[str, list[int]],
    translator: Translator,
    cache: TranslationCache | None,
    result: Translations,
) -> None:
    """Translate one language's distinct texts: cached ones from the cache, the rest in batches."""
    if translator.pair(language) is None:
        for rows in by_text.values():
            _settle(result, rows, NO_PAIR)
        return
    key = f"{translator.name}:{language}-{ENGLISH}"
    hashes = {text: text_hash(text) for text in by_text}
    known = cache.get(hashes.values(), key) if cache is not None else {}
    result.cached += len(known)
    for text, rows in by_text.items():
        if hashes[text] in known:
            _settle(result, rows, TRANSLATED, known[hashes[text]])
    for batch in _batches([text for text in by_text if hashes[text] not in known]):
        english = translator.translate([_protect(text) for text in batch], language)
        if english is None:  # the pair went away between listing and translating
            raise TranslatorError(f"{translator.name} no longer lists a pair for {language}")
        english = [_restore(e) for e in english]
        result.sent += len(batch)
        if cache is not None:
            cache.put({hashes[t]: e for t, e in zip(batch, english, strict=True)}, key)
        for text, translated in zip(batch, english, strict=True):
            _settle(result, by_text[text], TRANSLATED, translated)


def translate_messages(
    texts: Sequence[str | None],
    languages: Sequence[str],
    translator: Translator | None,
    cache: TranslationCache | None = None,
    *,
    required: bool = True,
) -> Translations:
    """English for every text whose language is neither English nor undetermined.

    Texts are redacted before they leave (and before they are hashed for the cache), and the
    English is redacted again. Each distinct text is sent once; each batch's translations are
    cached as soon as they arrive. A failing translator raises TranslatorError when `required`;
    otherwise the texts it did not translate are marked "failed" and counted, and it is not
    called again in this pass.
    """
    if len(texts) != len(languages):
        raise ValueError(f"{len(languages)} languages for {len(texts)} texts")
    result = Translations([None] * len(texts), [NONE] * len(texts))
    if translator is None:
        return result
    groups: dict[str, dict[str, list[int]]] = {}  # language -> redacted text -> rows
    rows = [
        i
        for i, (text, language) in enumerate(zip(texts, languages, strict=True))
        if text and language not in (ENGLISH, UNDETERMINED) and _LETTER.search(text)
    ]
    redacted = redact_texts([texts[i] for i in rows])[0].to_pylist()  # vectorised: most texts hold nothing to redact
    for i, text in zip(rows, redacted, strict=True):
        groups.setdefault(languages[i], {}).setdefault(text, []).append(i)
    for language, by_text in groups.items():
        try:
            if not result.errors:
                _translate_language(language, by_text, translator, cache, result)
                continue
        except TranslatorError as exc:
            if required:
                raise
            result.errors.append(str(exc))
        # a language without a pair is "no_pair" even then (the pair list, once fetched, is kept)
        status = FAILED
        with contextlib.suppress(TranslatorError):
            if translator.pair(language) is None:
                status = NO_PAIR
        for rows in by_text.values():
            if result.translation[rows[0]] == NONE:
                _settle(result, rows, status)
                result.failed += len(rows) if status == FAILED else 0
    return result


@dataclass
class MessageTranslator:
    """A configured translator (None: translation off), its cache and whether failures stop the run."""

    engine: Translator | None
    cache: TranslationCache | None
    required: bool = True

    def __call__(self, texts: Sequence[str | None], languages: Sequence[str]) -> Translations:
        return translate_messages(texts, languages, self.engine, self.cache, required=self.required)


def in_english(texts: Sequence[str | None], translator: MessageTranslator) -> list[str | None]:
    """Each text's English translation where the translator made one, else the text itself:
    what English-only labellers (VADER, the topic and intent models) should read."""
    languages, _ = detect_languages(texts)
    english = translator(texts, languages).text_en
    return [e if e is not None else t for e, t in zip(english, texts, strict=True)]


def apertium_installed() -> bool:
    """Whether the `apertium` command and at least one pair into English are installed here."""
    try:
        pipe = ApertiumPipe(timeout=30)
        return any(pipe.pair(lang) for lang in ("es", "ca", "gl", "eu", "is", "sr", "mk", "eo"))
    except TranslatorError:
        return False


def default_kind() -> str:
    """CONV_ANALYTICS_TRANSLATOR's default: apertium when its pairs are installed, else none."""
    return "apertium" if apertium_installed() else "none"


def make_translator(
    kind: str,
    url: str | None = None,
    api_key: str | None = None,
    required: bool = True,
    cache_dir: str | Path | None = None,
    timeout: float = 120.0,
) -> MessageTranslator:
    """The translator the settings describe: kind none|apertium|libretranslate; apertium with a
    url is an apertium-apy server, without one the local `apertium` command."""
    if kind not in KINDS:
        raise ValueError(f"{TRANSLATOR_SETTING} must be one of {', '.join(KINDS)}; got {kind!r}")
    engine: Translator | None = None
    if kind == "apertium":
        engine = ApertiumServer(url, timeout) if url else ApertiumPipe(timeout)
    elif kind == "libretranslate":
        if not url:
            raise ValueError(f"{TRANSLATOR_SETTING}=libretranslate needs {URL_SETTING} (the server's address)")
        engine = LibreTranslate(url, api_key, timeout)
    cache = TranslationCache(cache_dir) if engine is not None else None
    return MessageTranslator(engine, cache, required)
