"""Language, token counts and lemmas for the categoriser.

Tokenisation uses spacy.blank(lang) (rules shipped with spaCy, no model download); lemmas
come from spaCy's lookup tables (package spacy-lookups-data) for LEMMA_LANGUAGES, else the
lowercase form. One pipeline, lemma table and chunk cache are kept per language.

Chat messages are short and their vocabulary repeats. spaCy tokenises every
whitespace-delimited chunk on its own, so each distinct chunk is tokenised once (many chunks
joined into one Doc per nlp.pipe batch, tokens mapped back by character offset) and reused;
building one Doc per message would cost more than tokenising it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache

import numpy as np
import pyarrow as pa
import spacy
from spacy.attrs import IDX, IS_SPACE, NORM, ORTH
from spacy.language import Language
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

from conv_analytics.text.arrow import as_str_list, to_large_string, without_surrogates
from conv_analytics.text.language import UNDETERMINED, detect_languages
from conv_analytics.text.redact import LABELS
from conv_analytics.text.spacy_data import lookup_table, spacy_lang_module

# Multi-language tokenizer for "und" and for languages whose spaCy tokenizer needs a
# third-party segmenter that is not installed (Japanese, Thai, Vietnamese, ...).
FALLBACK_TOKENIZER = "xx"
PLACEHOLDERS = LABELS
# Languages whose messages get dictionary lemmas (the product's main chat languages).
LEMMA_LANGUAGES = frozenset({"en", "es", "de", "fr", "it", "pt", "nl"})
# spacy.blank() of these compiles a huge tokenizer-exception regex on import (fr ~12 s,
# id ~14 s, ms ~4 s, per process); they get the multi-language tokenizer with their own
# punctuation rules.
LIGHT_TOKENIZERS = frozenset({"fr", "id", "ms"})
# Chunks and characters per joined batch text handed to spaCy (well under its 1M limit).
BATCH_CHUNKS = 5000
BATCH_CHARS = 200_000
# Longest chunk (whitespace-free run) given to spaCy; see ChunkTokenizer.__call__.
MAX_CHUNK_CHARS = 1000
# Cached chunk entries per language before the cache is reset, and the longest chunk cached.
_CACHE_LIMIT = 500_000
_CACHED_CHUNK_CHARS = 64
# The longest text whose token count and lemmas are cached (entries count against _CACHE_LIMIT too).
_CACHED_TEXT_CHARS = 200
# Lookup entries that are wrong far more often than right in chat ("it's", "John's").
_LEMMA_OVERRIDES = {"en": {"'s": "'s"}}

_LANG_CODE = re.compile(r"[a-z]{2,3}")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_PLACEHOLDER = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")

SCHEMA = pa.schema(
    [
        pa.field("language", pa.string(), nullable=False),
        pa.field("language_confidence", pa.float64(), nullable=False),
        pa.field("token_count", pa.int32(), nullable=False),
        pa.field("lemmas", pa.large_string()),
    ]
)


def normalise_language(code: str | None) -> str | None:
    """'en-US' / 'EN' / 'pt_BR' -> 'en' / 'en' / 'pt'; None for missing, 'und' or malformed."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    if base == UNDETERMINED or not _LANG_CODE.fullmatch(base):
        return None
    return base


def _light_pipeline(lang: str) -> Language:
    """Multi-language pipeline with the language's own prefix/suffix/infix rules.

    Used where spacy.blank(lang) would compile a huge exception regex at import; it keeps
    the language's punctuation handling (French elision: "l'homme" -> "l'" "homme") and
    loses only rare exceptions such as "aujourd'hui" staying one token.
    """
    nlp = spacy.blank(FALLBACK_TOKENIZER)
    rules = spacy_lang_module(lang, "punctuation")
    tokenizer = nlp.tokenizer
    if prefixes := getattr(rules, "TOKENIZER_PREFIXES", None):
        tokenizer.prefix_search = compile_prefix_regex(prefixes).search
    if suffixes := getattr(rules, "TOKENIZER_SUFFIXES", None):
        tokenizer.suffix_search = compile_suffix_regex(suffixes).search
    if infixes := getattr(rules, "TOKENIZER_INFIXES", None):
        tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
    return nlp


@cache
def tokenizer_pipeline(lang: str) -> Language:
    """Blank spaCy pipeline for a language (cached), falling back to the multi-language one."""
    if lang in LIGHT_TOKENIZERS:
        nlp = _light_pipeline(lang)
    else:
        try:
            nlp = spacy.blank(lang)
        except ImportError:
            # Unknown code, or a tokenizer that needs an optional segmenter package.
            nlp = spacy.blank(FALLBACK_TOKENIZER)
    if hasattr(nlp.tokenizer, "add_special_case"):  # not on the Chinese character segmenter
        for placeholder in PLACEHOLDERS:
            nlp.tokenizer.add_special_case(placeholder, [{ORTH: placeholder}])
    return nlp


def lemma_table(lang: str) -> dict[str, str]:
    """Form -> lemma lookup table for a language, with chat-specific corrections.

    Only LEMMA_LANGUAGES get one: a table takes 1-7 s to load, which a handful of messages
    detected as, say, Catalan should not cost every run; other languages keep word forms.
    """
    if lang not in LEMMA_LANGUAGES:
        return {}
    table = lookup_table(lang)
    # Some tables (French) list candidate lemmas; the first is the most common reading.
    for form, lemma in table.items():
        if not isinstance(lemma, str):
            table[form] = lemma[0] if lemma else form
    table.update(_LEMMA_OVERRIDES.get(lang, {}))
    return table


class ChunkTokenizer:
    """Tokens and lemmas of whitespace-free chunks for one language, memoised.

    spaCy tokenises each whitespace-delimited chunk on its own, and chat vocabulary repeats,
    so each distinct chunk ("Thanks!", "don't") is tokenised once and reused. This also
    avoids building a spaCy Doc per message, which costs more than tokenising one.
    """

    def __init__(self, lang: str) -> None:
        self.nlp = tokenizer_pipeline(lang)
        self.table = lemma_table(lang)
        self.chunks: dict[str, tuple[int, str]] = {}
        self.texts: dict[str, tuple[int, str]] = {}

    def lemma(self, text: str, norm: str) -> str | None:
        """Lowercase lemma of a word token; None for punctuation, numbers and symbols."""
        if text in PLACEHOLDERS:
            return text.lower()
        if not _HAS_LETTER.search(text):
            return None
        # norm carries tokenizer exceptions ("n't" -> "not"); the original case finds
        # capitalised entries (German nouns).
        for key in (norm, text):
            lemma = self.table.get(key)
            if lemma:
                return lemma.lower()
        return norm.lower()

    def _tokenise(self, chunks: list[str]) -> list[tuple[int, str]]:
        """(token count, space-joined lemmas) per chunk, via one Doc per batch of chunks."""
        strings = self.nlp.vocab.strings
        words: dict[tuple[int, int], str | None] = {}
        results: list[tuple[int, str]] = []
        batches = list(_batches(chunks))
        for batch, doc in zip(batches, self.nlp.pipe(" ".join(b) for b in batches), strict=True):
            starts = np.cumsum([0] + [len(c) + 1 for c in batch[:-1]])
            tokens = doc.to_array([IDX, ORTH, NORM, IS_SPACE])
            tokens = tokens[tokens[:, 3] == 0]
            owner = np.searchsorted(starts, tokens[:, 0], side="right") - 1
            bounds = np.searchsorted(owner, np.arange(len(batch) + 1)).tolist()
            lemmas = []
            for orth, norm in zip(tokens[:, 1].tolist(), tokens[:, 2].tolist(), strict=True):
                key = (orth, norm)
                if key not in words:
                    words[key] = self.lemma(strings[orth], strings[norm])
                lemmas.append(words[key])
            for k in range(len(batch)):
                part = lemmas[bounds[k] : bounds[k + 1]]
                results.append((len(part), " ".join([w for w in part if w])))
        return results

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        """Non-space token counts and space-joined lemmas of word tokens, one per text.

        Whole messages repeat too ("Thanks!", a bot's canned replies), so each distinct text is
        analysed once and short ones are remembered across calls."""
        known = self.texts
        distinct = [t for t in dict.fromkeys(texts) if t not in known]
        fresh = dict(zip(distinct, zip(*self._analyse(distinct), strict=True), strict=True)) if distinct else {}
        results = [known.get(t) or fresh[t] for t in texts]
        if len(known) + len(fresh) > _CACHE_LIMIT:
            known.clear()
        known.update((t, v) for t, v in fresh.items() if len(t) <= _CACHED_TEXT_CHARS)
        return np.fromiter((n for n, _ in results), np.int32, len(results)), [w for _, w in results]

    def _analyse(self, texts: list[str]) -> tuple[np.ndarray, list[str]]:
        """Token counts and lemmas of texts, from their chunks."""
        split = [_chunks(text) for text in texts]
        known = self.chunks
        missing = {c: None for chunks in split for c in chunks if c not in known}
        # A chunk this long is no word (a blob, a run of symbols); spaCy's affix loop is
        # quadratic in chunk length, so it counts as one token without a lemma.
        normal = [c for c in missing if len(c) <= MAX_CHUNK_CHARS and c not in PLACEHOLDERS]
        fresh = dict(zip(normal, self._tokenise(normal), strict=True))
        fresh.update((c, (1, "")) for c in missing if len(c) > MAX_CHUNK_CHARS)
        fresh.update((c, (1, c.lower())) for c in missing if c in PLACEHOLDERS)
        counts = np.zeros(len(texts), dtype=np.int32)
        lemmas: list[str] = []
        for i, chunks in enumerate(split):
            parts = [known.get(c) or fresh[c] for c in chunks]
            counts[i] = sum(n for n, _ in parts)
            lemmas.append(" ".join([w for _, w in parts if w]))
        if len(known) + len(fresh) > _CACHE_LIMIT:
            known.clear()
        known.update((c, v) for c, v in fresh.items() if len(c) <= _CACHED_CHUNK_CHARS)
        return counts, lemmas


def _chunks(text: str) -> list[str]:
    """Whitespace-free runs of a text, redaction placeholders cut out as runs of their own
    (so that no tokenizer, not even the Chinese character segmenter, splits them)."""
    chunks = text.split()
    if "[" not in text:
        return chunks
    return [part for chunk in chunks for part in _PLACEHOLDER.split(chunk) if part]


@cache
def chunk_tokenizer(lang: str) -> ChunkTokenizer:
    """One ChunkTokenizer (pipeline, lemma table, chunk cache) per language."""
    return ChunkTokenizer(lang)


def _batches(chunks: list[str]) -> Iterator[list[str]]:
    """Consecutive runs of chunks small enough for one spaCy Doc."""
    batch: list[str] = []
    chars = 0
    for chunk in chunks:
        if batch and (len(batch) >= BATCH_CHUNKS or chars + len(chunk) > BATCH_CHARS):
            yield batch
            batch, chars = [], 0
        batch.append(chunk)
        chars += len(chunk) + 1
    if batch:
        yield batch


def enrich_texts(texts: Iterable[str | None] | pa.Array, languages_hint: pa.Array | None = None) -> pa.Table:
    """One row per text: language, language_confidence, token_count (non-space tokens), lemmas
    (space-joined).

    A non-null languages_hint entry (e.g. from the source system) overrides detection, with
    confidence 1. A null text gives language "und" (confidence 0), 0 tokens and null lemmas.
    """
    values = as_str_list(texts)
    if not isinstance(texts, pa.Array | pa.ChunkedArray):  # Arrow's strings decode to no lone surrogate
        values = without_surrogates(values)
    hints = None if languages_hint is None else as_str_list(languages_hint)
    if hints is not None and len(hints) != len(values):
        raise ValueError(f"languages_hint has {len(hints)} entries for {len(values)} texts")
    languages, confidences = detect_languages(values)
    for i, hint in enumerate(hints or ()):
        if hinted := normalise_language(hint):
            languages[i], confidences[i] = hinted, 1.0

    groups: dict[str, list[int]] = {}
    for i, text in enumerate(values):
        if text:
            lang = FALLBACK_TOKENIZER if languages[i] == UNDETERMINED else languages[i]
            groups.setdefault(lang, []).append(i)

    token_count = np.zeros(len(values), dtype=np.int32)
    lemmas: list[str | None] = [None if t is None else "" for t in values]
    for lang, rows in groups.items():
        counts, group_lemmas = chunk_tokenizer(lang)([values[i] for i in rows])  # type: ignore[misc]
        token_count[rows] = counts
        for i, text in zip(rows, group_lemmas, strict=True):
            lemmas[i] = text

    return pa.Table.from_arrays(
        [
            pa.array(languages, type=pa.string()),
            pa.array(confidences, type=pa.float64()),
            pa.array(token_count),
            to_large_string(lemmas),
        ],
        schema=SCHEMA,
    )
