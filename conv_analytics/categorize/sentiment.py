"""VADER-compatible sentiment (the `compound` score) for many texts at once, on the CPU or CUDA.

`vader_compound` matches vaderSentiment 3.3.2's ``polarity_scores(text)["compound"]`` (rounded to
4 decimals like VADER) while scoring texts straight from Arrow's UTF-8 buffers in Numba kernels
(``kernels/sentiment_cpu.py``, ``kernels/sentiment_cuda.py``): the per-text Python work of VADER
is what made it too slow for the categoriser. VADER's data (lexicon, emoji descriptions, boosters,
negations, special-case idioms, its constants) is read from the installed package at run time.

Non-ASCII text stays in the kernel (Unicode case for ALL-CAPS comes from a table made with
Python's own str.isupper()). Only texts holding a code point VADER rewrites (an emoji of its emoji
lexicon, which becomes its description) or that Python treats specially (non-ASCII whitespace, the
Kelvin sign whose lower case is ASCII "k") are flagged by the kernel, rewritten, and scored by the
kernel again. The rewrite is Python's str.translate with a table built here (`_Rewrite`), done by a
kernel from that table's entries (11.2 -> 4.9 ms, timed in turns, for the 2,984 flagged of 240,000 mix
texts); text that is not well-formed UTF-8 is decoded and translated by Python itself, its errors
becoming U+FFFD.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence
from typing import NamedTuple

import numba
import numpy as np
import pyarrow as pa

from conv_analytics.categorize.device import resolve_device
from conv_analytics.categorize.kernels import hashing_cpu as hashing
from conv_analytics.categorize.kernels import sentiment_cpu as rules
from conv_analytics.text.arrow import readonly, utf8_buffers

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
LABELS = ("negative", "neutral", "positive")
# Code points from here on have no case and no whitespace (CJK extensions, tags, private use).
CASE_SCAN_END = 0x20000
# prange work items per CPU thread: enough to even out texts of very different lengths.
CHUNKS_PER_THREAD = 16

Texts = Sequence[str | None] | pa.Array | pa.ChunkedArray


class SentimentTables(NamedTuple):
    """The kernels' tables; the kernels take them as a plain tuple in this order."""

    byte_kind: np.ndarray  # uint8[256]: BYTE_* bits of each byte value
    word_bits: np.ndarray  # uint64[2**WORD_BITS_LOG2 / 64]: bits set at vocabulary words' top hash bits
    slot_ids: np.ndarray  # int32[cap]: open-addressing table of vocabulary ids, -1 empty
    slot_hash: np.ndarray  # uint64[cap]: word_hash of the word in each slot
    word_off: np.ndarray  # int64[V + 1]: word i is word_bytes[word_off[i]:word_off[i + 1]]
    word_bytes: np.ndarray  # uint8
    word_flags: np.ndarray  # uint8[V]: IN_LEXICON | BOOSTER | NEGATION | NGRAM_START
    valence: np.ndarray  # float64[V]: lexicon valence
    booster: np.ndarray  # float64[V]: BOOSTER_DICT scalar
    kw: np.ndarray  # int32[len(KEYWORDS)]: ids of the words the rules name
    ngrams: np.ndarray  # int32[K, 5]: (kind, length, w0, w1, w2) of multi-word entries
    ngram_val: np.ndarray  # float64[K]
    case_table: np.ndarray  # uint8[CASE_SCAN_END]: CASE_UPPER / CASE_LOWER_OR_TITLE / 0
    prepass_cps: np.ndarray  # int64, sorted: code points that send a text to the pre-pass
    consts: np.ndarray  # float64[2]: C_INCR, N_SCALAR


class _Rewrite(dict):
    """str.translate table doing VADER's emoji-to-description step (and Python's own whitespace
    and case quirks) so the kernel can score the result; filled lazily, identity cached too."""

    def __init__(self, emojis: dict[str, str]) -> None:
        super().__init__()
        self.emojis = emojis

    def __missing__(self, cp: int) -> str | int:
        char = chr(cp)
        if char in self.emojis:
            # VADER puts a space before a description (unless one is there) and none after.
            out: str | int = " " + self.emojis[char]
        elif char.isspace():
            out = " "
        else:
            lowered = char.lower()
            if cp >= 128 and lowered != char and lowered.isascii():
                out = lowered.upper() if char.isupper() else lowered
            else:
                out = cp
        self[cp] = out
        return out


def _vader():
    """The installed vaderSentiment module and an analyzer (which parses its data files)."""
    from vaderSentiment import vaderSentiment

    return vaderSentiment, vaderSentiment.SentimentIntensityAnalyzer()


def _reachable(word: str) -> bool:
    """VADER looks words up lowercased and single tokens have no whitespace."""
    return bool(word) and word == word.lower() and not any(c.isspace() for c in word)


def _byte_kinds() -> np.ndarray:
    """The tokenizer's byte classes, from Python's own str.split() whitespace, string.punctuation
    and ASCII case (bytes >= 0x80 are only marked as such: the case table handles them), and the
    bytes that split the topic tokenizer's words."""
    kinds = np.zeros(256, dtype=np.uint8)
    for byte in range(256):
        char = chr(byte)
        if byte >= 0x80:
            kinds[byte] = rules.BYTE_HIGH
            continue
        kinds[byte] = (
            rules.BYTE_UPPER * char.isupper()
            | rules.BYTE_LOWER * char.islower()
            | rules.BYTE_PUNCT * (char in string.punctuation)
            | rules.BYTE_SPACE * char.isspace()
            | rules.BYTE_MARK * (char in "!?")
            | rules.BYTE_QUOTE * (char == "'")
            | rules.BYTE_SPLIT * (not hashing.WORD_BYTE[byte])
        )
    return kinds


def _case_and_prepass(emojis: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Unicode case table for str.isupper() and the code points the pre-pass rewrites."""
    case = np.zeros(CASE_SCAN_END, dtype=np.uint8)
    special = {ord(e) for e in emojis if len(e) == 1}
    if any(cp < 128 for cp in special):
        raise ValueError("vaderSentiment's emoji lexicon has an ASCII key; the kernel expects none")
    for cp in range(128, CASE_SCAN_END):
        char = chr(cp)
        if char.isupper():
            case[cp] = rules.CASE_UPPER
        elif not (char + "A").isupper():
            case[cp] = rules.CASE_LOWER_OR_TITLE
        lowered = char.lower()
        if char.isspace() or (lowered != char and lowered.isascii()):
            special.add(cp)
    return case, np.array(sorted(special), dtype=np.int64)


@functools.lru_cache(maxsize=1)
def sentiment_tables() -> SentimentTables:
    """Build the kernels' tables from the installed vaderSentiment (once per process)."""
    module, analyzer = _vader()
    words: dict[str, int] = {}
    flags: list[int] = []
    valence: list[float] = []
    booster: list[float] = []

    def word_id(word: str) -> int:
        if word not in words:
            words[word] = len(words)
            flags.append(0)
            valence.append(0.0)
            booster.append(0.0)
        return words[word]

    for word, value in analyzer.lexicon.items():
        if _reachable(word):
            wid = word_id(word)
            flags[wid] |= rules.IN_LEXICON
            valence[wid] = float(value)
    ngrams: list[tuple[int, int, int, int, int]] = []
    ngram_val: list[float] = []

    def add_ngram(kind: int, phrase: str, value: float) -> None:
        parts = phrase.split(" ")
        if len(parts) in (2, 3) and all(_reachable(p) for p in parts):
            ids = [word_id(p) for p in parts] + [-1] * (3 - len(parts))
            ngrams.append((kind, len(parts), *ids))
            ngram_val.append(float(value))

    for word, value in module.BOOSTER_DICT.items():
        if " " in word:
            add_ngram(rules.NGRAM_BOOSTER, word, value)
        elif _reachable(word):
            wid = word_id(word)
            flags[wid] |= rules.BOOSTER
            booster[wid] = float(value)
    for phrase, value in module.SPECIAL_CASES.items():
        # VADER only ever looks special cases up as 2- and 3-word sequences.
        add_ngram(rules.NGRAM_SPECIAL, phrase, value)
    for word in module.NEGATE:
        flags[word_id(word.lower())] |= rules.NEGATION
    kw = np.array([word_id(w) for w in rules.KEYWORDS], dtype=np.int32)
    for row in ngrams:
        flags[row[2]] |= rules.NGRAM_START

    vocab = list(words)
    encoded = [w.encode("utf-8") for w in vocab]
    cap = 1 << (2 * len(vocab)).bit_length()
    slot_ids = np.full(cap, -1, dtype=np.int32)
    slot_hash = np.zeros(cap, dtype=np.uint64)
    word_bits = np.zeros((1 << rules.WORD_BITS_LOG2) // 64, dtype=np.uint64)
    for wid, raw in enumerate(encoded):
        h = rules.word_hash(raw)
        bit = h >> (64 - rules.WORD_BITS_LOG2)
        word_bits[bit >> 6] |= np.uint64(1 << (bit & 63))
        slot = h & (cap - 1)
        while slot_ids[slot] >= 0:
            slot = (slot + 1) & (cap - 1)
        slot_ids[slot] = wid
        slot_hash[slot] = h
    word_off = np.zeros(len(vocab) + 1, dtype=np.int64)
    word_off[1:] = np.cumsum([len(raw) for raw in encoded])
    case_table, prepass_cps = _case_and_prepass(analyzer.emojis)
    return SentimentTables(
        byte_kind=_byte_kinds(),
        word_bits=word_bits,
        slot_ids=slot_ids,
        slot_hash=slot_hash,
        word_off=word_off,
        word_bytes=np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(),
        word_flags=np.array(flags, dtype=np.uint8),
        valence=np.array(valence, dtype=np.float64),
        booster=np.array(booster, dtype=np.float64),
        kw=kw,
        ngrams=np.array(ngrams, dtype=np.int32).reshape(-1, 5),
        ngram_val=np.array(ngram_val, dtype=np.float64),
        case_table=case_table,
        prepass_cps=prepass_cps,
        consts=np.array([module.C_INCR, module.N_SCALAR], dtype=np.float64),
    )


@functools.lru_cache(maxsize=1)
def _rewrite_table() -> _Rewrite:
    return _Rewrite(_vader()[1].emojis)


@functools.lru_cache(maxsize=1)
def _replacements() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pre-pass as arrays for the kernel: (code points, sorted; offsets; UTF-8 bytes) of every code
    point the translate table changes: ASCII whitespace other than the space, and the pre-pass's own."""
    table = _rewrite_table()
    changed = [cp for cp in range(128) if table[cp] != chr(cp) and isinstance(table[cp], str)]
    cps = np.array(changed + sentiment_tables().prepass_cps.tolist(), dtype=np.int64)
    encoded = [table[int(cp)].encode("utf-8") for cp in cps]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return cps, offsets, readonly(np.frombuffer(b"".join(encoded), dtype=np.uint8))


def _rewritten(offsets: np.ndarray, data: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 buffers (read-only, as utf8_buffers gives them) of the flagged texts after VADER's emoji
    step: by the kernel, but for text that is not well-formed UTF-8, which Python decodes (each error
    -> U+FFFD) and translates."""
    cps, replacement_offsets, replacement_bytes = _replacements()
    new_offsets, new_data, valid = rules.rewrite_texts(offsets, data, rows, cps, replacement_offsets, replacement_bytes)
    if valid.all():
        return readonly(new_offsets), readonly(new_data)
    table = _rewrite_table()
    pieces = [
        bytes(new_data[new_offsets[k] : new_offsets[k + 1]])
        if valid[k]
        else bytes(data[offsets[i] : offsets[i + 1]]).decode("utf-8", "replace").translate(table).encode("utf-8")
        for k, i in enumerate(rows)
    ]
    joined = np.zeros(len(pieces) + 1, dtype=np.int64)
    joined[1:] = np.cumsum([len(p) for p in pieces])
    return readonly(joined), np.frombuffer(b"".join(pieces) or b"\0", dtype=np.uint8)


def _scorer(device: str):
    if device == "cuda":
        from conv_analytics.categorize.kernels.sentiment_cuda import score_texts_cuda

        return score_texts_cuda
    return score_texts


def score_texts(
    offsets: np.ndarray, data: np.ndarray, detect: bool, tables: tuple, linear: tuple | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """CPU kernel call on read-only buffers: (unrounded compound, flagged-for-pre-pass) per text.

    `linear` (models.FusedModel.cpu_scoring) also scores fused topic and intent models in the same pass.
    """
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.float64)
    flagged = np.zeros(n, dtype=np.uint8)
    chunks = numba.get_num_threads() * CHUNKS_PER_THREAD
    rules.score_texts_cpu(offsets, data, detect, tables, out, flagged, chunks, linear)
    return out, flagged


def vader_compound(texts: Texts, device: str | None = None, linear: tuple | None = None) -> np.ndarray:
    """VADER compound score per text (float64, rounded to 4 decimals like VADER).

    Nulls and empty texts score 0.0. `device` is "cpu", "cuda" or "auto"; None reads
    CONV_ANALYTICS_DEVICE (see `resolve_device`). `linear`, on the CPU only: fused linear models to
    score in the same pass over the texts (models.FusedModel.cpu_scoring), into its own arrays.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("vader_compound takes a sequence of texts, not a single string")
    offsets, data = utf8_buffers(texts)
    tables = tuple(sentiment_tables())
    resolved = resolve_device(device)
    score = _scorer(resolved)
    if linear is None:
        scores, flagged = score(offsets, data, True, tables)
    elif resolved == "cpu":
        scores, flagged = score_texts(offsets, data, True, tables, linear)
    else:
        raise ValueError("linear models are scored with the sentiment on the CPU only")
    rows = np.flatnonzero(flagged)
    if rows.size:
        rewritten, _ = score(*_rewritten(offsets, data, rows), False, tables)
        scores[rows] = rewritten
    return np.round(scores, 4)


def sentiment_labels(
    compound: np.ndarray, thresholds: tuple[float, float] = (NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD)
) -> pa.Array:
    """Label each score negative (<= the first threshold), positive (>= the second) or neutral.

    The defaults are VADER's usual -0.05 / +0.05; `conv-analytics train --task sentiment` fits others.
    """
    negative_below, positive_above = thresholds
    values = np.asarray(compound, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("sentiment_labels needs finite compound scores (got NaN or inf)")
    # positive wins where the two cut-offs overlap (both 0, say)
    index = np.where(values >= positive_above, 2, values > negative_below)
    return pa.array(LABELS, type=pa.string()).take(index)
