"""Hashed features and linear-model scoring over Arrow UTF-8 buffers: the feature code shared with
the CUDA kernels (hashing_cuda imports `walk` and `finish_scores` from here) and the CPU kernels.

A text is read as raw UTF-8 bytes (invalid sequences are just bytes, never an error). Tokens are
runs of word bytes (ASCII letters and digits, any byte >= 0x80 so accented words, CJK and emoji
stay whole) plus single ASCII punctuation marks, which carry signal for dialogue acts ("?", "!").
Features: word unigrams and bigrams (group 0) and character n-grams of each space-padded word
(group 1), hashed with 32-bit FNV-1a into `2**bits` buckets per group: code = group * dim + bucket.

`walk` visits every feature of one text in order and, depending on `mode`, counts them, writes
their codes, or accumulates the class scores of one or more linear models at once (topic and
intent share one pass: a joint vocabulary, one bit test per feature and a rank for the known
ones, whose weight rows also carry what the norms need). Streaming the features
this way needs only a small fixed scratch per text, which is what lets the same code run as one
CUDA thread per text.

The functions are `register_jitable`: plain Python for the CUDA simulator, compiled into both the
`njit` kernels and the `numba.cuda` kernels (so they avoid what the CUDA target lacks, such as
the min/max builtins).

The topic kernels (topics_cpu) compile in this file's hashing too; the package's `__init__` empties
Numba's cache when any kernel module changes, which Numba alone would not see for them. The CPU
kernels below have serial twins for small batches, where starting the thread pool costs more than
the work.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads, njit, prange
from numba.extending import register_jitable

MODE_COUNT = 0
MODE_WRITE = 1
MODE_SCORE = 2

N_GROUPS = 2  # word 1-2-grams, character n-grams
# Columns each model adds after all models' classes in the scoring weights (models.FusedModel):
# its IDF**2 split into two float32s that sum exactly to the float64 square, and 1 where it knows
# the feature. Accumulated with the class weights, they give each group's norm and known count.
EXTRA_NORM_HI = 0
EXTRA_NORM_LO = 1
EXTRA_KNOWN = 2
N_EXTRA = 3

MAX_CLASSES_CUDA = 256  # weight columns (all models' classes and extras): GPU accumulators are fixed-size
MAX_MODELS = 4  # models scored in one pass
MAX_WORD = 48  # longest word prefix used for character n-grams
MAX_CHAR_SPAN = 4  # at most this many n-gram lengths (char_max - char_min + 1)
FEATS = MAX_WORD + 2  # scratch layout: padded word bytes, then one token's feature codes
SCRATCH_SIZE = FEATS + 2 + MAX_CHAR_SPAN * (MAX_WORD + 2)

_MASK32 = 0xFFFFFFFF
_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_SEED_WORD = 0x9E3779B1
_SEED_PUNCT = 0x7F4A7C15
_SEED_BIGRAM = 0x85EBCA77
_SEED_CHAR = 0xC2B2AE3D
WORD_HASH_START = _FNV_OFFSET ^ _SEED_WORD  # a word's hash before its first byte (fnv_byte of lower_byte)


@register_jitable
def fnv_byte(h, b):
    return ((h ^ b) * _FNV_PRIME) & _MASK32


@register_jitable
def fnv_word32(h, x):
    """Feed the four bytes of a 32-bit value (bigrams hash the pair of token hashes)."""
    h = fnv_byte(h, x & 0xFF)
    h = fnv_byte(h, (x >> 8) & 0xFF)
    h = fnv_byte(h, (x >> 16) & 0xFF)
    return fnv_byte(h, (x >> 24) & 0xFF)


@register_jitable
def bucket(h, bits):
    """Fold the high bits in: FNV's low bits alone are weakly mixed."""
    return (h ^ (h >> 15) ^ (h >> 27)) & ((1 << bits) - 1)


# Per byte value: 1 for word bytes (ASCII letters and digits, and any byte >= 0x80, so accented
# words, CJK and emoji stay whole), and the byte ASCII-lowercased. Global arrays are constants to
# Numba, on the CPU and in CUDA's constant memory alike.
WORD_BYTE = np.array([chr(b).isascii() and chr(b).isalnum() or b >= 0x80 for b in range(256)], dtype=np.uint8)
ASCII_LOWER = np.array([ord(chr(b).lower()) if chr(b).isascii() else b for b in range(256)], dtype=np.int64)


@register_jitable
def punct_hash(b):
    """The hash of a punctuation mark's token."""
    return fnv_byte(_FNV_OFFSET ^ _SEED_PUNCT, b)


@register_jitable
def popcount(x):
    """Set bits of a 64-bit word (the bit-parallel sum, which LLVM turns into one popcnt)."""
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return (x * 0x0101010101010101) >> 56


@register_jitable
def is_punct_byte(b):
    """Punctuation kept as a token; quotes and apostrophes only split words."""
    return 33 <= b <= 126 and WORD_BYTE[b] == 0 and b != 34 and b != 39 and b != 96


@register_jitable
def lower_byte(b, before):
    """Byte b lowercased, `before` being the byte ahead of it in the same word (0 at its start):
    ASCII A-Z, and Latin-1 capitals (UTF-8 0xC3 0x80..0x9E, but not the multiplication sign)."""
    if b >= 0x80 and before == 0xC3 and b <= 0x9E and b != 0x97:
        return b + 0x20
    return ASCII_LOWER[b]


@register_jitable(_nrt=False, inline="always")
def token_codes(h, bigram_head, bits):  # pragma: no cover - compiled into the kernels
    """A token's word features from its hash: (unigram code, bigram code or -1 for a text's first token,
    the next token's bigram head).

    The next bigram's first half needs this token alone: computed now, it overlaps the reading of the
    next token's bytes (fused scoring 3 % faster, the same codes).
    """
    bigram = bucket(fnv_word32(bigram_head, h), bits) if bigram_head >= 0 else -1
    return bucket(h, bits), bigram, fnv_word32(_FNV_OFFSET ^ _SEED_BIGRAM, h)


@register_jitable(_nrt=False, inline="always")
def score_code(code, bits, known, rank, weights, acc, unseen, unseen_char):  # pragma: no cover
    """Add a known code's weight row to acc[group]; return (unseen, unseen_char) counting it on where no
    model knows it, for the norm (add_unseen)."""
    # one bit per code (64 KiB at bits=18) turns unknown features away; a known code's row is its rank
    # among the known codes
    word_bits = known[code >> 6]
    bit = code & 63
    seen = (word_bits >> bit) & 1
    if seen:
        group = code >> bits
        row = rank[code >> 6] + popcount(word_bits & ((1 << bit) - 1))
        for c in range(weights.shape[1]):
            acc[group, c] += weights[row, c]
    # counted without a branch, and no argument reassigned in one: inlined into the sentiment kernel,
    # Numba's SSA otherwise warns of variables out of scope
    return unseen + 1 - seen, unseen_char + (1 - seen) * (code >> bits)


@register_jitable(_nrt=False, inline="always")
def add_unseen(acc, weights, unseen2, unseen, unseen_char):  # pragma: no cover - compiled into the kernels
    """Each model's norm share of the features no model knows, added once a text is scored."""
    extra = weights.shape[1] - N_EXTRA * unseen2.shape[0]
    for m_ in range(unseen2.shape[0]):
        acc[0, extra + N_EXTRA * m_ + EXTRA_NORM_HI] += (unseen - unseen_char) * unseen2[m_]
        acc[1, extra + N_EXTRA * m_ + EXTRA_NORM_HI] += unseen_char * unseen2[m_]


@register_jitable(_nrt=False, inline="always")
def next_token(data, p, end):  # pragma: no cover - compiled into the kernels
    """(where it ends, its hash) of the topic tokenizer's token at or after data[p] (-1: none before end)."""
    while p < end:
        b = int(data[p])
        if WORD_BYTE[b] != 0:
            h = WORD_HASH_START
            before = 0
            while p < end and WORD_BYTE[int(data[p])] != 0:
                h = fnv_byte(h, lower_byte(int(data[p]), before))
                before = int(data[p])
                p += 1
            return p, h
        p += 1
        if is_punct_byte(b):
            return p, punct_hash(b)
    return end, -1


@register_jitable(_nrt=False, inline="always")
def score_token(h, bigram_head, unseen, bits, known, rank, weights, acc):  # pragma: no cover
    """MODE_SCORE of one token from its hash (WORD_HASH_START fed by fnv_byte of lower_byte, or
    punct_hash), for a kernel that splits the text itself (the sentiment kernel's pass, which then
    scores these models too); word features only, no character n-grams. Returns walk's state after
    it, (bigram head, unseen): a text starts from (-1, 0) and ends with add_unseen(..., unseen, 0).
    The codes stay in registers: through a scratch array, as walk has them, that pass took as long as
    the two kernels it replaces (0.98 of their time on 240,000 DailyDialog messages, against 0.73)."""
    unigram, bigram, next_head = token_codes(h, bigram_head, bits)
    after_unigram, _ = score_code(unigram, bits, known, rank, weights, acc, unseen, 0)
    if bigram < 0:
        return next_head, after_unigram
    after_bigram, _ = score_code(bigram, bits, known, rank, weights, acc, after_unigram, 0)
    return next_head, after_bigram


@register_jitable(_nrt=False)
def walk(
    data,
    start,
    end,
    bits,
    char_min,
    char_max,
    max_word,
    mode,
    out,
    pos,
    known,
    rank,
    unseen2,
    weights,
    acc,
    scratch,
):  # pragma: no cover - compiled into the kernels
    """Visit every feature of data[start:end] in a fixed order; return how many there were.

    Per token, scratch[1:m+1] holds the word lowercased (space-padded at 0 and m+1) when
    character n-grams are on, and scratch[FEATS:] collects the token's feature codes; one loop then
    counts, writes or scores them. Keeping a single consuming site (rather than a call per
    feature) is what keeps this loop fast. Each character n-gram start feeds its bytes once,
    emitting the char_min..char_max-grams.

    In MODE_SCORE, acc[group] sums the weight rows of known features (class scores and the
    extra norm and known-count columns: one branch-free loop); features no model knows (most of
    them) only count, and their share of each model's norm is added once at the end.
    """
    dim = 1 << bits
    k = 0
    bigram_head = -1  # the bigram hash fed with the previous token's hash; -1 before the first token
    unseen = 0  # features the joint vocabulary lacks ...
    unseen_char = 0  # ... and how many of them are character n-grams (group 1)
    p = start
    while p < end:
        b = int(data[p])
        word = WORD_BYTE[b] != 0
        if word:
            h = WORD_HASH_START
            m = 0
            before = 0
            while True:
                lb = lower_byte(b, before)
                h = fnv_byte(h, lb)
                if char_max > 0 and m < max_word:
                    m += 1
                    scratch[m] = lb
                before = b
                p += 1
                if p == end:
                    break
                b = int(data[p])
                if WORD_BYTE[b] == 0:
                    break
        elif is_punct_byte(b):
            h = punct_hash(b)
            p += 1
        else:
            p += 1
            continue
        unigram, bigram, bigram_head = token_codes(h, bigram_head, bits)
        n = FEATS
        scratch[n] = unigram
        n += 1
        if bigram >= 0:
            scratch[n] = bigram
            n += 1
        if char_max > 0 and word:
            scratch[0] = 32
            scratch[m + 1] = 32
            length = m + 2
            for i in range(0, length - char_min + 1):
                g = _FNV_OFFSET ^ _SEED_CHAR
                # no min(): Numba's CUDA target does not take builtins from shared CPU code
                stop = i + char_max if i + char_max < length else length
                for j in range(i, stop):
                    g = fnv_byte(g, scratch[j])
                    if j - i + 1 >= char_min:
                        scratch[n] = dim + bucket(g, bits)
                        n += 1
        if mode == MODE_WRITE:
            for f in range(FEATS, n):
                out[pos + k + f - FEATS] = scratch[f]
        elif mode == MODE_SCORE:
            # score_code's work, with the unseen counts in a branch: 4-10 % faster here than calling it
            for f in range(FEATS, n):
                code = scratch[f]
                word_bits = known[code >> 6]
                bit = code & 63
                if (word_bits >> bit) & 1:
                    group = code >> bits
                    row = rank[code >> 6] + popcount(word_bits & ((1 << bit) - 1))
                    for c in range(weights.shape[1]):
                        acc[group, c] += weights[row, c]
                else:
                    unseen += 1
                    unseen_char += code >> bits
        k += n - FEATS
    if mode == MODE_SCORE:
        add_unseen(acc, weights, unseen2, unseen, unseen_char)
    return k


@register_jitable(_nrt=False)
def finish_scores(acc, bias, extra, model, lo, hi):  # pragma: no cover - compiled into the kernels
    """Softmax over one model's classes lo..hi-1; return (argmax - lo, its probability).

    Each group's score is divided by that group's L2 norm for this model (features the model never
    saw count in the norm, so a text made mostly of unknown words gets a weak, low-confidence
    score). No known feature at all gives (-1, 0.0): the caller labels it with the fallback label.
    `extra` is the first column after all models' classes (see walk). Works in place to stay
    allocation-free on the GPU: this model's norm column in acc becomes the inverse norm (one
    square root and division per group, not per class) and acc[0, lo:hi] becomes the class
    scores (computed once for both the argmax and the softmax sum).
    """
    col = extra + N_EXTRA * model
    if acc[0, col + EXTRA_KNOWN] + acc[1, col + EXTRA_KNOWN] == 0.0:
        return -1, 0.0
    for g in range(acc.shape[0]):
        norm2 = acc[g, col + EXTRA_NORM_HI] + acc[g, col + EXTRA_NORM_LO]
        # an empty group has no weights to scale: 0 keeps the loop below free of branches
        acc[g, col] = 1.0 / math.sqrt(norm2) if norm2 > 0.0 else 0.0
    inv_word = acc[0, col]
    inv_char = acc[1, col]
    top = -1e300
    for c in range(lo, hi):
        z = float(bias[c]) + acc[0, c] * inv_word + acc[1, c] * inv_char
        acc[0, c] = z
        top = z if z > top else top
    best = lo
    while acc[0, best] != top:
        best += 1
    total = 0.0
    for c in range(lo, hi):
        total += math.exp(acc[0, c] - top)
    return best - lo, 1.0 / total


@register_jitable(_nrt=False, inline="always")
def store_best(acc, bias, class_offsets, i, labels, confidence):  # pragma: no cover - compiled into the kernels
    """finish_scores of every model into labels[i] and confidence[i]."""
    n_models = class_offsets.shape[0] - 1
    for m in range(n_models):
        best, p = finish_scores(acc, bias, class_offsets[n_models], m, class_offsets[m], class_offsets[m + 1])
        labels[i, m] = best
        confidence[i, m] = p


PARALLEL_MIN_BYTES = 1 << 16  # below this much text the serial kernels are faster

_NO_INT = np.zeros(0, dtype=np.int32)
_NO_W = np.zeros((0, 0), dtype=np.float32)
_NO_F64 = np.zeros(0, dtype=np.float64)
_NO_ACC = np.zeros((0, 0), dtype=np.float64)


@register_jitable
def _count_range(lo, hi, offsets, data, bits, char_min, char_max, max_word, counts, no_int, no_w, no_f64, no_acc):
    buf = np.empty(SCRATCH_SIZE, dtype=np.int64)
    no_known = np.zeros(1, dtype=np.int64)
    for i in range(lo, hi):
        counts[i] = walk(
            data, offsets[i], offsets[i + 1], bits, char_min, char_max, max_word, MODE_COUNT,
            no_int, 0, no_known, no_int, no_f64, no_w, no_acc, buf,
        )  # fmt: skip


@register_jitable
def _write_range(lo, hi, offsets, data, bits, char_min, char_max, max_word, starts, out, no_int, no_w, no_f64, no_acc):
    buf = np.empty(SCRATCH_SIZE, dtype=np.int64)
    no_known = np.zeros(1, dtype=np.int64)
    for i in range(lo, hi):
        walk(
            data, offsets[i], offsets[i + 1], bits, char_min, char_max, max_word, MODE_WRITE,
            out, starts[i], no_known, no_int, no_f64, no_w, no_acc, buf,
        )  # fmt: skip


@register_jitable
def _score_range(
    lo, hi, offsets, data, bits, char_min, char_max, max_word,
    known, rank, unseen2, weights, bias, class_offsets, no_int, labels, confidence,
):  # fmt: skip
    acc = np.empty((N_GROUPS, weights.shape[1]), dtype=np.float64)
    scratch = np.empty(SCRATCH_SIZE, dtype=np.int64)
    for i in range(lo, hi):
        acc[:] = 0.0
        walk(
            data, offsets[i], offsets[i + 1], bits, char_min, char_max, max_word, MODE_SCORE,
            no_int, 0, known, rank, unseen2, weights, acc, scratch,
        )  # fmt: skip
        store_best(acc, bias, class_offsets, i, labels, confidence)


@njit(cache=True)
def _count_serial(offsets, data, bits, char_min, char_max, max_word, counts, *dummies):
    _count_range(0, offsets.size - 1, offsets, data, bits, char_min, char_max, max_word, counts, *dummies)


@njit(parallel=True, cache=True)
def _count_parallel(n_chunks, offsets, data, bits, char_min, char_max, max_word, counts, *dummies):
    n = offsets.size - 1
    for chunk in prange(n_chunks):
        lo, hi = chunk * n // n_chunks, (chunk + 1) * n // n_chunks
        _count_range(lo, hi, offsets, data, bits, char_min, char_max, max_word, counts, *dummies)


@njit(cache=True)
def _write_serial(offsets, data, bits, char_min, char_max, max_word, starts, out, *dummies):
    _write_range(0, offsets.size - 1, offsets, data, bits, char_min, char_max, max_word, starts, out, *dummies)


@njit(parallel=True, cache=True)
def _write_parallel(n_chunks, offsets, data, bits, char_min, char_max, max_word, starts, out, *dummies):
    n = offsets.size - 1
    for chunk in prange(n_chunks):
        lo, hi = chunk * n // n_chunks, (chunk + 1) * n // n_chunks
        _write_range(lo, hi, offsets, data, bits, char_min, char_max, max_word, starts, out, *dummies)


@njit(cache=True)
def _score_serial(*args):
    _score_range(0, args[0].size - 1, *args)


@njit(parallel=True, cache=True)
def _score_parallel(n_chunks, *args):
    n = args[0].size - 1
    for chunk in prange(n_chunks):
        _score_range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks, *args)


def _chunks(offsets: np.ndarray) -> int:
    """0 for the serial kernel, else how many slices to spread over the threads."""
    n = offsets.size - 1
    if n < 2 or offsets[-1] - offsets[0] < PARALLEL_MIN_BYTES:
        return 0
    return min(n, 16 * get_num_threads())


def count_features(offsets: np.ndarray, data: np.ndarray, spec: tuple[int, int, int, int]) -> np.ndarray:
    """Number of hashed features of each text (spec = bits, char_min, char_max, max_word)."""
    counts = np.zeros(offsets.size - 1, dtype=np.int64)
    dummies = (_NO_INT, _NO_W, _NO_F64, _NO_ACC)
    n_chunks = _chunks(offsets)
    if n_chunks:
        _count_parallel(n_chunks, offsets, data, *spec, counts, *dummies)
    elif counts.size:
        _count_serial(offsets, data, *spec, counts, *dummies)
    return counts


def hash_features(
    offsets: np.ndarray, data: np.ndarray, spec: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(starts int64[n+1], codes int32[total]): the feature codes of text i are codes[starts[i]:starts[i+1]]."""
    counts = count_features(offsets, data, spec)
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    codes = np.empty(int(starts[-1]), dtype=np.int32)
    dummies = (_NO_INT, _NO_W, _NO_F64, _NO_ACC)
    n_chunks = _chunks(offsets)
    if n_chunks:
        _write_parallel(n_chunks, offsets, data, *spec, starts, codes, *dummies)
    elif counts.size:
        _write_serial(offsets, data, *spec, starts, codes, *dummies)
    return starts, codes


def score_linear(
    offsets: np.ndarray,
    data: np.ndarray,
    spec: tuple[int, int, int, int],
    known: np.ndarray,
    rank: np.ndarray,
    unseen2: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray,
    class_offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Score K models in one pass: (best class int32[n, K], its softmax probability float64[n, K]).

    Model m owns columns class_offsets[m]:class_offsets[m+1] of weights and bias, and the N_EXTRA
    columns from class_offsets[K] + N_EXTRA * m; best is -1 where the text had no feature that
    model knows. See models.FusedModel for the arrays.
    """
    n = offsets.size - 1
    n_models = unseen2.shape[0]
    labels = np.empty((n, n_models), dtype=np.int32)
    confidence = np.empty((n, n_models), dtype=np.float64)
    args = (offsets, data, *spec, known, rank, unseen2, weights, bias, class_offsets, _NO_INT, labels, confidence)
    n_chunks = _chunks(offsets)
    if n_chunks:
        _score_parallel(n_chunks, *args)
    elif n:
        _score_serial(*args)
    return labels, confidence
