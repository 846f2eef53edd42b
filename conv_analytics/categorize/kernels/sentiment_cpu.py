"""VADER's sentiment rules over raw UTF-8 bytes, as Numba functions shared by the CPU and CUDA.

The rule functions below (``@rule``: ``njit`` without reference counting) never allocate; callers
hand in scratch arrays. ``score_texts_cpu`` runs ``score_range`` over many texts with ``prange``,
and ``sentiment_cuda`` calls the very same ``score_range`` for one text per CUDA thread (Numba
compiles a CPU function called from device code as a device function), so both devices run one
implementation. Tokens map to vocabulary ids through an open-addressing hash table with a
byte-by-byte check of the stored word.

The tables they read (vocabulary hash table, word flags, valences, n-grams, case table) are built
from the installed vaderSentiment package by ``conv_analytics.categorize.sentiment``; the tuple
layout is ``SentimentTables`` there. Rules follow vaderSentiment 3.3.2 ``polarity_scores`` including its
quirks (whitespace split, punctuation strip unless that leaves <= 2 characters, ALL-CAPS emphasis
only when the text mixes case, the "but" re-weighting by first equal value, "never so/this",
"without doubt", "least", n-gram idioms, ! and ? emphasis, normalisation with alpha = 15).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from conv_analytics.categorize.kernels.hashing_cpu import (
    N_GROUPS,
    WORD_HASH_START,
    add_unseen,
    fnv_byte,
    lower_byte,
    next_token,
    score_token,
    store_best,
)

# Words the rules name, in the order of the ``kw`` table (their vocabulary ids).
KEYWORDS = (
    "no",
    "or",
    "nor",
    "kind",
    "of",
    "never",
    "so",
    "this",
    "without",
    "doubt",
    "least",
    "at",
    "very",
    "but",
)
KW_NO, KW_OR, KW_NOR, KW_KIND, KW_OF, KW_NEVER, KW_SO, KW_THIS = range(8)
KW_WITHOUT, KW_DOUBT, KW_LEAST, KW_AT, KW_VERY, KW_BUT = range(8, 14)

# Bits of the per-word ``word_flags`` table.
IN_LEXICON = 1
BOOSTER = 2
NEGATION = 4
NGRAM_START = 8  # first word of some n-gram
# Bits of the per-token flags.
TOKEN_UPPER = 1
TOKEN_NT = 2
# ``ngrams`` rows are (kind, length, w0, w1, w2): VADER's SPECIAL_CASES or multi-word BOOSTER_DICT.
NGRAM_SPECIAL = 0
NGRAM_BOOSTER = 1
# ``case_table`` values for code points >= 128 (Python's str.isupper() semantics).
CASE_UPPER = 1
CASE_LOWER_OR_TITLE = 2
# Bits of the ``byte_kind`` table: what the tokenizer needs to know of each byte, in one load.
BYTE_UPPER = 1  # ASCII A-Z (the bit's place value, 1, times 32 lowercases it)
BYTE_LOWER = 2  # ASCII a-z
BYTE_HIGH = 4  # >= 0x80: part of a multi-byte character
BYTE_PUNCT = 8  # string.punctuation
BYTE_SPACE = 16  # whitespace to Python's str.split()
BYTE_MARK = 32  # "!" or "?", which VADER counts for emphasis
BYTE_QUOTE = 64  # "'", which "n't" needs
BYTE_SPLIT = 128  # ASCII other than letters and digits: it splits the topic tokenizer's words

# ``word_bits``: a bit per value of a token hash's top WORD_BITS_LOG2 bits, set for vocabulary words.
WORD_BITS_LOG2 = 18

HASH_ROTATE = 5
MIX = np.uint64(0xFF51AFD7ED558CCD)
MIX_SHIFT = 29
HASH_MIX = np.uint64(0x9E3779B97F4A7C15)

# Figures VADER writes inline in its functions (its module constants come from the tables).
SCALAR_DECAY_2 = 0.95
SCALAR_DECAY_3 = 0.9
NEVER_SO_FACTOR = 1.25
BEFORE_BUT = 0.5
AFTER_BUT = 1.5
EXCLAMATION_STEP = 0.292
MAX_EXCLAMATIONS = 4
QUESTION_STEP = 0.18
QUESTION_CAP = 0.96
ALPHA = 15.0


# Rule functions allocate nothing, so they compile without Numba's reference counting: passing
# the tables' arrays from call to call then costs no atomic increments (and CUDA has no NRT).
rule = njit(cache=True, _nrt=False)
# Small helpers of token_valence, inlined at Numba level: each call would otherwise pass every
# array argument as its unpacked fields.
rule_inlined = njit(cache=True, _nrt=False, inline="always")


def word_hash(word: bytes) -> int:
    """The kernel's token hash (hash_step over the bytes, then mix_hash), for building the
    vocabulary table in Python."""
    mask = 0xFFFFFFFFFFFFFFFF
    h = 0
    for byte in word:
        h = (((h << HASH_ROTATE) | (h >> (64 - HASH_ROTATE))) & mask) ^ byte
    h = (h * int(MIX)) & mask
    return h ^ (h >> MIX_SHIFT)


@rule_inlined
def hash_step(h, byte, kind):
    """Feed one byte, lowercased, to a token hash: rotate and xor, so the chain from byte to byte
    is two cycles long (a multiply per byte would make it the tokenizer's critical path)."""
    lowered = np.uint64(byte + ((kind & BYTE_UPPER) << 5))
    return ((h << np.uint64(HASH_ROTATE)) | (h >> np.uint64(64 - HASH_ROTATE))) ^ lowered


@rule_inlined
def mix_hash(h):
    """One multiply, then its high bits folded onto the low ones: the word filter reads the top
    WORD_BITS_LOG2 bits and the vocabulary table the low bits, and each depends on every byte.
    (MurmurHash3's full finaliser, three multiplies deep, cost the tokenizer a seventh of its time.)"""
    h = h * MIX
    return h ^ (h >> np.uint64(MIX_SHIFT))


@rule
def decode(data, pos, end):
    """(code point, byte length) at pos; a malformed sequence reads as one U+FFFD per byte."""
    b0 = np.int64(data[pos])
    if b0 < 0x80:
        return b0, 1
    if b0 >= 0xF8 or b0 < 0xC0:
        return np.int64(0xFFFD), 1
    if b0 >= 0xF0:
        size = 4
        cp = b0 & 0x07
    elif b0 >= 0xE0:
        size = 3
        cp = b0 & 0x0F
    else:
        size = 2
        cp = b0 & 0x1F
    if pos + size > end:
        return np.int64(0xFFFD), 1
    for k in range(1, size):
        c = np.int64(data[pos + k])
        if (c & 0xC0) != 0x80:
            return np.int64(0xFFFD), 1
        cp = (cp << 6) | (c & 0x3F)
    return cp, size


@rule_inlined
def find_sorted(values, x):
    """Index of x in the sorted array `values`, or -1."""
    lo = 0
    hi = values.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < values.shape[0] and values[lo] == x else -1


@rule
def needs_prepass(data, start, end, prepass_cps):
    """True when the text holds a code point VADER rewrites (emoji, non-ASCII space, Kelvin)."""
    pos = start
    while pos < end:
        if data[pos] < 0x80:
            pos += 1
            continue
        cp, step = decode(data, pos, end)
        pos += step
        if find_sorted(prepass_cps, cp) >= 0:
            return True
    return False


@rule
def probe(h, data, a, b, slot_ids, slot_hash, word_off, word_bytes):
    """Vocabulary id of the ASCII-lowercased token data[a:b] with hash h, or -1."""
    mask = slot_ids.shape[0] - 1
    slot = np.int64(h & np.uint64(mask))
    while True:
        wid = slot_ids[slot]
        if wid < 0:
            return -1
        if slot_hash[slot] == h:
            ws = word_off[wid]
            if word_off[wid + 1] - ws == b - a:
                same = True
                for k in range(b - a):
                    c = np.int64(data[a + k])
                    if 65 <= c <= 90:
                        c += 32
                    if c != word_bytes[ws + k]:
                        same = False
                        break
                if same:
                    return wid
        slot = (slot + 1) & mask


@rule
def is_upper(data, a, b, case_table):
    """Python's str.isupper() on data[a:b]: some cased character, none lower- or titlecase."""
    seen = False
    pos = a
    while pos < b:
        c = data[pos]
        if c < 0x80:
            if 97 <= c <= 122:
                return False
            if 65 <= c <= 90:
                seen = True
            pos += 1
        else:
            cp, step = decode(data, pos, b)
            pos += step
            if cp < case_table.shape[0]:
                kind = case_table[cp]
                if kind == CASE_LOWER_OR_TITLE:
                    return False
                if kind == CASE_UPPER:
                    seen = True
    return seen


@rule
def more_chars_than(data, a, b, limit):
    """True when data[a:b] has more than `limit` code points."""
    count = 0
    pos = a
    while pos < b:
        count += 1
        if count > limit:
            return True
        _, step = decode(data, pos, b)
        pos += step
    return False


@rule
def tokenize(
    data, start, end, byte_kind, word_bits, slot_ids, slot_hash, word_off, word_bytes, case_table, ids, flags, linear
):
    """Split like str.split(), strip punctuation like VADER, look tokens up; fill ids/flags.

    Each token is scanned once for its end while its bytes' kinds are OR-ed together and its
    lowercase form is hashed (hashed again only when VADER strips punctuation off it); only
    tokens holding punctuation, an apostrophe or non-ASCII bytes take the slower paths. One bit
    of `word_bits` per hash turns most words (those VADER has no entry for) away before the
    vocabulary table is probed.
    Unless `linear` (see score_range) is None, the same pass scores fused topic and intent models: it
    splits each token into the topic tokenizer's tokens too (words end at BYTE_SPLIT bytes, of which
    punctuation marks are tokens; whitespace ends both tokenizers' tokens), the tokens hashed walk's
    way, and hands them to hashing_cpu.score_token in walk's order.
    Returns (tokens, ALL-CAPS tokens, "!" count, "?" count, BYTE_* kinds of all its bytes).
    """
    count = 0
    upper = 0
    seen = 0
    exclamations = 0
    questions = 0
    bigram_head = -1  # the fused models' walk state
    unseen = 0
    if linear is not None:
        acc, bits, known, rank, unseen2, weights = linear
    pos = start
    while True:
        while pos < end and byte_kind[data[pos]] & BYTE_SPACE:
            pos += 1
        if pos >= end:
            break
        a = pos
        kinds = 0
        h = np.uint64(0)
        word = WORD_HASH_START  # the token's bytes as one word of the topic tokenizer
        before = 0
        while pos < end:
            c = data[pos]
            kind = byte_kind[c]
            if kind & BYTE_SPACE:
                break
            kinds |= kind
            h = hash_step(h, c, kind)
            if linear is not None:  # a branch Numba drops where linear is None
                word = fnv_byte(word, lower_byte(np.int64(c), before))
                before = np.int64(c)
            pos += 1
        b = pos
        if linear is not None:
            if kinds & BYTE_SPLIT:  # "you?", "don't": read again for the topic tokenizer's tokens
                q = a
                while q < b:
                    q, token = next_token(data, q, b)
                    if token >= 0:
                        bigram_head, unseen = score_token(token, bigram_head, unseen, bits, known, rank, weights, acc)
            else:
                bigram_head, unseen = score_token(word, bigram_head, unseen, bits, known, rank, weights, acc)
        seen |= kinds
        if kinds & BYTE_MARK:
            for p in range(a, b):
                exclamations += data[p] == 33
                questions += data[p] == 63
        if kinds & BYTE_PUNCT:
            sa = a
            sb = b
            while sa < sb and byte_kind[data[sa]] & BYTE_PUNCT:
                sa += 1
            while sb > sa and byte_kind[data[sb - 1]] & BYTE_PUNCT:
                sb -= 1
            # VADER keeps the unstripped token when stripping leaves <= 2 characters (an ASCII
            # token has as many characters as bytes)
            stripped = sa > a or sb < b
            if (
                stripped
                and sb - sa > 2
                and (sb - sa > 8 or (kinds & BYTE_HIGH) == 0 or more_chars_than(data, sa, sb, 2))
            ):
                a = sa
                b = sb
                h = np.uint64(0)
                for p in range(a, b):
                    h = hash_step(h, data[p], byte_kind[data[p]])
        h = mix_hash(h)
        flag = 0
        # stripped bytes are ASCII punctuation, which has no case: the kinds still hold for a..b
        has_upper = (kinds & BYTE_UPPER) != 0
        if kinds & BYTE_HIGH and not kinds & BYTE_LOWER:
            has_upper = is_upper(data, a, b, case_table)
        if has_upper and not kinds & BYTE_LOWER:
            flag |= TOKEN_UPPER
            upper += 1
        if kinds & BYTE_QUOTE:
            for p in range(a + 2, b):
                if data[p - 1] == 39 and (data[p] | 32) == 116 and (data[p - 2] | 32) == 110:
                    flag |= TOKEN_NT
                    break
        bit = h >> np.uint64(64 - WORD_BITS_LOG2)
        if (word_bits[bit >> np.uint64(6)] >> (bit & np.uint64(63))) & np.uint64(1):
            ids[count] = probe(h, data, a, b, slot_ids, slot_hash, word_off, word_bytes)
        else:
            ids[count] = -1
        flags[count] = flag
        count += 1
    if linear is not None:
        add_unseen(acc, weights, unseen2, unseen, 0)
    return count, upper, exclamations, questions, seen


@rule_inlined
def find_ngram(ngrams, word_flags, kind, length, w0, w1, w2):
    """Row of the n-gram (w0, w1[, w2]) of this kind, or -1."""
    if w0 < 0 or (word_flags[w0] & NGRAM_START) == 0:
        return -1
    for row in range(ngrams.shape[0]):
        if (
            ngrams[row, 0] == kind
            and ngrams[row, 1] == length
            and ngrams[row, 2] == w0
            and ngrams[row, 3] == w1
            and (length == 2 or ngrams[row, 4] == w2)
        ):
            return row
    return -1


@rule_inlined
def in_lexicon(wid, word_flags):
    return wid >= 0 and (word_flags[wid] & IN_LEXICON) != 0


@rule_inlined
def negated(j, ids, flags, word_flags):
    """VADER's negated([word]): a NEGATE word or any word containing "n't"."""
    wid = ids[j]
    return (wid >= 0 and (word_flags[wid] & NEGATION) != 0) or (flags[j] & TOKEN_NT) != 0


@rule_inlined
def negation_check(v, start_i, i, ids, flags, word_flags, kw, n_scalar):
    """VADER's _negation_check for the word start_i + 1 places before token i."""
    never, so, this = kw[KW_NEVER], kw[KW_SO], kw[KW_THIS]
    without, doubt = kw[KW_WITHOUT], kw[KW_DOUBT]
    if start_i == 0:
        if negated(i - 1, ids, flags, word_flags):
            v *= n_scalar
    elif start_i == 1:
        if ids[i - 2] == never and (ids[i - 1] == so or ids[i - 1] == this):
            v *= NEVER_SO_FACTOR
        elif ids[i - 2] == without and ids[i - 1] == doubt:
            pass
        elif negated(i - 2, ids, flags, word_flags):
            v *= n_scalar
    else:
        # VADER's `never and so/this or so/this` binds as `(never and ...) or ...`: kept as is.
        if (ids[i - 3] == never and (ids[i - 2] == so or ids[i - 2] == this)) or (
            ids[i - 1] == so or ids[i - 1] == this
        ):
            v *= NEVER_SO_FACTOR
        elif ids[i - 3] == without and (ids[i - 2] == doubt or ids[i - 1] == doubt):
            pass
        elif negated(i - 3, ids, flags, word_flags):
            v *= n_scalar
    return v


@rule_inlined
def idioms_check(v, i, n, ids, word_flags, ngrams, ngram_val):
    """VADER's _special_idioms_check around token i (i >= 3)."""
    row = find_ngram(ngrams, word_flags, NGRAM_SPECIAL, 2, ids[i - 1], ids[i], -1)
    if row < 0:
        row = find_ngram(ngrams, word_flags, NGRAM_SPECIAL, 3, ids[i - 2], ids[i - 1], ids[i])
    if row < 0:
        row = find_ngram(ngrams, word_flags, NGRAM_SPECIAL, 2, ids[i - 2], ids[i - 1], -1)
    if row < 0:
        row = find_ngram(ngrams, word_flags, NGRAM_SPECIAL, 3, ids[i - 3], ids[i - 2], ids[i - 1])
    if row < 0:
        row = find_ngram(ngrams, word_flags, NGRAM_SPECIAL, 2, ids[i - 3], ids[i - 2], -1)
    if row >= 0:
        v = ngram_val[row]
    if n - 1 > i:
        row = find_ngram(ngrams, word_flags, NGRAM_SPECIAL, 2, ids[i], ids[i + 1], -1)
        if row >= 0:
            v = ngram_val[row]
    if n - 1 > i + 1:
        row = find_ngram(ngrams, word_flags, NGRAM_SPECIAL, 3, ids[i], ids[i + 1], ids[i + 2])
        if row >= 0:
            v = ngram_val[row]
    row = find_ngram(ngrams, word_flags, NGRAM_BOOSTER, 3, ids[i - 3], ids[i - 2], ids[i - 1])
    if row >= 0:
        v += ngram_val[row]
    row = find_ngram(ngrams, word_flags, NGRAM_BOOSTER, 2, ids[i - 3], ids[i - 2], -1)
    if row >= 0:
        v += ngram_val[row]
    row = find_ngram(ngrams, word_flags, NGRAM_BOOSTER, 2, ids[i - 2], ids[i - 1], -1)
    if row >= 0:
        v += ngram_val[row]
    return v


@rule
def token_valence(i, n, ids, flags, cap_diff, word_flags, valence, booster, kw, ngrams, ngram_val, c_incr, n_scalar):
    """VADER's per-token sentiment (polarity_scores loop body + sentiment_valence)."""
    wid = ids[i]
    if wid < 0 or (word_flags[wid] & BOOSTER) != 0:
        return 0.0
    if wid == kw[KW_KIND] and i < n - 1 and ids[i + 1] == kw[KW_OF]:
        return 0.0
    if (word_flags[wid] & IN_LEXICON) == 0:
        return 0.0
    no = kw[KW_NO]
    v = valence[wid]
    if wid == no and i != n - 1 and in_lexicon(ids[i + 1], word_flags):
        v = 0.0
    if (
        (i > 0 and ids[i - 1] == no)
        or (i > 1 and ids[i - 2] == no)
        or (i > 2 and ids[i - 3] == no and (ids[i - 1] == kw[KW_OR] or ids[i - 1] == kw[KW_NOR]))
    ):
        v = valence[wid] * n_scalar
    if cap_diff and (flags[i] & TOKEN_UPPER) != 0:
        if v > 0:
            v += c_incr
        else:
            v -= c_incr
    for start_i in range(3):
        j = i - start_i - 1
        if j < 0 or in_lexicon(ids[j], word_flags):
            continue
        scalar = 0.0
        pj = ids[j]
        if pj >= 0 and (word_flags[pj] & BOOSTER) != 0:
            scalar = booster[pj]
            if v < 0:
                scalar = -scalar
            if cap_diff and (flags[j] & TOKEN_UPPER) != 0:
                if v > 0:
                    scalar += c_incr
                else:
                    scalar -= c_incr
        if start_i == 1 and scalar != 0:
            scalar *= SCALAR_DECAY_2
        elif start_i == 2 and scalar != 0:
            scalar *= SCALAR_DECAY_3
        v += scalar
        v = negation_check(v, start_i, i, ids, flags, word_flags, kw, n_scalar)
        if start_i == 2:
            v = idioms_check(v, i, n, ids, word_flags, ngrams, ngram_val)
    least = kw[KW_LEAST]
    if i > 1 and not in_lexicon(ids[i - 1], word_flags) and ids[i - 1] == least:
        if ids[i - 2] != kw[KW_AT] and ids[i - 2] != kw[KW_VERY]:
            v *= n_scalar
    elif i > 0 and not in_lexicon(ids[i - 1], word_flags) and ids[i - 1] == least:
        v *= n_scalar
    return v


@rule
def value_slot(value, cap):
    """Bucket of a float key (valences are small, so scaling to an integer keeps them apart)."""
    h = np.uint64(np.int64(value * 1048576.0)) * HASH_MIX
    return np.int64(h >> np.uint64(33)) % cap


@rule
def multiset_add(keys, counts, value):
    cap = keys.shape[0]
    slot = value_slot(value, cap)
    while counts[slot] >= 0 and keys[slot] != value:
        slot = (slot + 1) % cap
    if counts[slot] < 0:
        keys[slot] = value
        counts[slot] = 0
    counts[slot] += 1


@rule
def multiset_take(keys, counts, value):
    """Remove one `value` if present; True when one was there."""
    cap = keys.shape[0]
    slot = value_slot(value, cap)
    while counts[slot] >= 0:
        if keys[slot] == value:
            if counts[slot] > 0:
                counts[slot] -= 1
                return True
            return False
        slot = (slot + 1) % cap
    return False


@rule
def but_weighted_sum(sents, n, but_at, keys, counts):
    """Sum of sentiments after VADER's _but_check, in O(n).

    VADER walks the list and rescales the *first* element equal to each value (list.index), so a
    value after "but" that also occurs before it halves that earlier copy instead of gaining x1.5.
    Only which side of "but" the first equal value lies on matters for the sum, so a multiset of
    the (halved) values before "but" reproduces it. keys/counts hold >= 2n + 1 slots.
    """
    for slot in range(2 * n + 1):
        counts[slot] = -1
    table_keys = keys[: 2 * n + 1]
    table_counts = counts[: 2 * n + 1]
    before = 0.0
    for j in range(but_at):
        value = sents[j] * BEFORE_BUT
        before += value
        if value != 0.0:
            multiset_add(table_keys, table_counts, value)
    pivot = sents[but_at]
    after = 0.0
    for k in range(but_at + 1, n):
        value = sents[k]
        if value == 0.0:
            continue
        if multiset_take(table_keys, table_counts, value):
            multiset_add(table_keys, table_counts, value * BEFORE_BUT)
            before -= value * BEFORE_BUT
            after += value
        elif value == pivot:
            after += value
        else:
            after += value * AFTER_BUT
    return before + pivot + after


@rule
def normalized_compound(total, exclamations, questions):
    """VADER's punctuation emphasis and normalize(score, alpha=15)."""
    amplifier = (exclamations if exclamations < MAX_EXCLAMATIONS else MAX_EXCLAMATIONS) * EXCLAMATION_STEP
    if questions > 1:
        amplifier += questions * QUESTION_STEP if questions <= 3 else QUESTION_CAP
    if total > 0:
        total += amplifier
    elif total < 0:
        total -= amplifier
    # Written without min/max, which Numba's CUDA target does not take from CPU code.
    score = total / math.sqrt(total * total + ALPHA)
    if score > 1.0:
        return 1.0
    if score < -1.0:
        return -1.0
    return score


@rule
def score_text(
    data,
    start,
    end,
    byte_kind,
    word_bits,
    slot_ids,
    slot_hash,
    word_off,
    word_bytes,
    word_flags,
    valence,
    booster,
    kw,
    ngrams,
    ngram_val,
    case_table,
    consts,
    ids,
    flags,
    sents,
    keys,
    counts,
    linear,
):
    """(Unrounded VADER compound of data[start:end], whether the text has non-ASCII bytes).

    The table arguments are the ``SentimentTables`` fields (conv_analytics.categorize.sentiment),
    passed one by one so that a caller looping over texts unpacks them once (fewer refcounts).
    ids/flags/sents need room for token_room(end - start) tokens and keys/counts for twice that
    plus one. `linear`: see score_range.
    """
    n, upper, exclamations, questions, seen = tokenize(
        data, start, end, byte_kind, word_bits, slot_ids, slot_hash, word_off, word_bytes, case_table, ids, flags,
        linear,
    )  # fmt: skip
    non_ascii = (seen & BYTE_HIGH) != 0
    if n == 0:
        return 0.0, non_ascii
    cap_diff = 0 < n - upper < n
    c_incr = consts[0]
    n_scalar = consts[1]
    but = kw[KW_BUT]
    but_at = -1
    total = 0.0
    for i in range(n):
        wid = ids[i]
        if but_at < 0 and wid == but:
            but_at = i
        value = 0.0
        if wid >= 0 and (word_flags[wid] & IN_LEXICON) != 0:
            value = token_valence(
                i,
                n,
                ids,
                flags,
                cap_diff,
                word_flags,
                valence,
                booster,
                kw,
                ngrams,
                ngram_val,
                c_incr,
                n_scalar,
            )
        sents[i] = value
        total += value
    if but_at >= 0:
        total = but_weighted_sum(sents, n, but_at, keys, counts)
    if total == 0.0:
        return 0.0, non_ascii  # punctuation only amplifies a non-zero sum
    return normalized_compound(total, exclamations, questions), non_ascii


@rule
def strict_decode(data, pos, end):
    """(code point, byte length) of the well-formed UTF-8 sequence at pos, or (-1, 0) where Python's
    decoder would find an error (overlong forms, surrogates, truncation, stray continuation bytes)."""
    b0 = np.int64(data[pos])
    if b0 < 0x80:
        return b0, 1
    if b0 < 0xC2 or b0 > 0xF4:
        return -1, 0
    size = 2 if b0 < 0xE0 else (3 if b0 < 0xF0 else 4)
    if pos + size > end:
        return -1, 0
    b1 = np.int64(data[pos + 1])
    low = 0x80
    high = 0xBF
    if b0 == 0xE0:
        low = 0xA0
    elif b0 == 0xED:
        high = 0x9F
    elif b0 == 0xF0:
        low = 0x90
    elif b0 == 0xF4:
        high = 0x8F
    if b1 < low or b1 > high:
        return -1, 0
    cp = (b0 & (0x7F >> size)) << 6 | (b1 & 0x3F)
    for k in range(2, size):
        c = np.int64(data[pos + k])
        if (c & 0xC0) != 0x80:
            return -1, 0
        cp = (cp << 6) | (c & 0x3F)
    return cp, size


@rule
def rewrite_text(data, start, end, cps, replacement_offsets, replacement_bytes, out, at):
    """Write data[start:end] with each code point of `cps` (sorted) replaced by its replacement bytes
    at out[at:] (out empty: only count); return the bytes written, or -1 for text that is not UTF-8."""
    written = 0
    pos = start
    while pos < end:
        cp, size = strict_decode(data, pos, end)
        if size == 0:
            return -1
        replaced = find_sorted(cps, cp)
        if replaced >= 0:
            source = replacement_bytes
            a = replacement_offsets[replaced]
            b = replacement_offsets[replaced + 1]
        else:
            source = data
            a = pos
            b = pos + size
        if out.shape[0]:
            for k in range(a, b):
                out[at + written + k - a] = source[k]
        written += b - a
        pos += size
    return written


@njit(cache=True)
def rewrite_texts(offsets, data, rows, cps, replacement_offsets, replacement_bytes):
    """(offsets, UTF-8 data, valid) of texts `rows` with the code points of `cps` replaced: the Python
    pre-pass's str.translate, for the texts that are well-formed UTF-8 (valid[k] = 0 and no bytes for
    the others, which the caller rewrites as Python decodes them)."""
    n = rows.shape[0]
    valid = np.ones(n, dtype=np.uint8)
    new_offsets = np.zeros(n + 1, dtype=np.int64)
    nothing = np.empty(0, dtype=np.uint8)
    for k in range(n):
        i = rows[k]
        size = rewrite_text(data, offsets[i], offsets[i + 1], cps, replacement_offsets, replacement_bytes, nothing, 0)
        if size < 0:
            valid[k] = 0
            size = 0
        new_offsets[k + 1] = new_offsets[k] + size
    out = np.empty(max(new_offsets[n], 1), dtype=np.uint8)
    for k in range(n):
        if valid[k]:
            i = rows[k]
            rewrite_text(
                data, offsets[i], offsets[i + 1], cps, replacement_offsets, replacement_bytes, out, new_offsets[k]
            )
    return new_offsets, out, valid


@njit(cache=True)
def token_room(nbytes):
    """Most tokens a text of nbytes can split into."""
    return (nbytes + 1) // 2 + 1


@rule
def score_range(lo, hi, offsets, data, detect, tables, scratch, out, flagged, linear, best):
    """Score texts lo..hi-1 into out, one after the other (the CUDA kernel runs one per thread).

    `scratch` is (ids, flags, sents, keys, counts) with room for the longest text's
    token_room (keys and counts: twice that plus one). With detect set, texts needing the pre-pass
    (rewrite_texts) get flagged[i] = 1 (and out[i] = 0).

    `linear` and `best` (or None) score fused linear models (hashing_cpu.score_linear) in the same pass
    over each text's bytes, for features without character n-grams: tokenize takes `linear`, (acc,
    bits, known, rank, unseen2, weights), and store_best `best`, (bias, class_offsets, labels,
    confidence). (One tuple of all eleven handed down to tokenize made this pass slower than the two
    kernels it replaces: 1.09 of their time on 240,000 DailyDialog messages, against 0.75.)
    """
    (
        byte_kind,
        word_bits,
        slot_ids,
        slot_hash,
        word_off,
        word_bytes,
        word_flags,
        valence,
        booster,
        kw,
        ngrams,
        ngram_val,
        case_table,
        prepass_cps,
        consts,
    ) = tables
    ids, flags, sents, keys, counts = scratch
    for i in range(lo, hi):
        start = offsets[i]
        end = offsets[i + 1]
        if linear is not None:
            linear[0][:] = 0.0  # the fused models' sums
        score, non_ascii = score_text(
            data,
            start,
            end,
            byte_kind,
            word_bits,
            slot_ids,
            slot_hash,
            word_off,
            word_bytes,
            word_flags,
            valence,
            booster,
            kw,
            ngrams,
            ngram_val,
            case_table,
            consts,
            ids,
            flags,
            sents,
            keys,
            counts,
            linear,
        )
        if linear is not None:
            bias, class_offsets, labels, confidence = best
            store_best(linear[0], bias, class_offsets, i, labels, confidence)
        # only a non-ASCII text can hold what the pre-pass rewrites
        if detect and non_ascii and needs_prepass(data, start, end, prepass_cps):
            flagged[i] = 1
            score = 0.0
        out[i] = score


@njit(cache=True, nogil=True)
def score_chunk(lo, hi, offsets, data, detect, tables, out, flagged, linear):
    """score_range over texts lo..hi-1 with scratch sized for the longest of them.

    A function of its own rather than the body of the prange loop: Numba then compiles it as plain
    code, which ran 1.6x faster per thread than the same lines lowered inside the parfor (240,000
    DailyDialog messages on one thread: 100 ms against 162 ms, the same scores).
    """
    longest = 0
    for i in range(lo, hi):
        longest = max(longest, offsets[i + 1] - offsets[i])
    room = token_room(longest)
    scratch = (
        np.empty(room, np.int32),
        np.empty(room, np.uint8),
        np.empty(room, np.float64),
        np.empty(2 * room + 1, np.float64),
        np.empty(2 * room + 1, np.int64),
    )
    if linear is None:
        score_range(lo, hi, offsets, data, detect, tables, scratch, out, flagged, None, None)
    else:
        bits, known, rank, unseen2, weights, bias, class_offsets, labels, confidence = linear
        acc = np.empty((N_GROUPS, weights.shape[1]), np.float64)
        score_range(
            lo, hi, offsets, data, detect, tables, scratch, out, flagged,
            (acc, bits, known, rank, unseen2, weights), (bias, class_offsets, labels, confidence),
        )  # fmt: skip


@njit(parallel=True, cache=True)
def score_texts_cpu(offsets, data, detect, tables, out, flagged, chunks, linear):
    """Score texts data[offsets[i]:offsets[i+1]] into out: prange over `chunks` runs of texts.

    `linear` is None, or fused linear models to score in the same pass: (bits, known, rank, unseen2,
    weights, bias, class_offsets, labels, confidence), as models.FusedModel.cpu_scoring makes it.
    """
    n = offsets.shape[0] - 1
    chunks = min(n, chunks)
    for chunk in prange(chunks):
        score_chunk(chunk * n // chunks, (chunk + 1) * n // chunks, offsets, data, detect, tables, out, flagged, linear)
