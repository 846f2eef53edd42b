"""CPU kernels: hashed features and linear-model scoring over Arrow UTF-8 buffers, parallel per text.

Each kernel has a serial twin for small batches, where starting the thread pool costs more than
the work (a single chat message is scored in microseconds).
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange
from numba.extending import register_jitable

from .hashing_common import (
    MODE_COUNT,
    MODE_SCORE,
    MODE_WRITE,
    N_GROUPS,
    N_STATS,
    SCRATCH_SIZE,
    finish_scores,
    walk,
)

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
            no_int, 0, no_known, no_int, no_w, no_f64, no_w, no_acc, no_acc, buf,
        )  # fmt: skip


@register_jitable
def _write_range(lo, hi, offsets, data, bits, char_min, char_max, max_word, starts, out, no_int, no_w, no_f64, no_acc):
    buf = np.empty(SCRATCH_SIZE, dtype=np.int64)
    no_known = np.zeros(1, dtype=np.int64)
    for i in range(lo, hi):
        walk(
            data, offsets[i], offsets[i + 1], bits, char_min, char_max, max_word, MODE_WRITE,
            out, starts[i], no_known, no_int, no_w, no_f64, no_w, no_acc, no_acc, buf,
        )  # fmt: skip


@register_jitable
def _score_range(
    lo, hi, offsets, data, bits, char_min, char_max, max_word,
    known, rows, idfs, unseen2, weights, bias, class_offsets, no_int, labels, confidence,
):  # fmt: skip
    n_models = unseen2.shape[0]
    acc = np.empty((N_GROUPS, weights.shape[1]), dtype=np.float64)
    stats = np.empty((n_models, N_STATS), dtype=np.float64)
    scratch = np.empty(SCRATCH_SIZE, dtype=np.int64)
    for i in range(lo, hi):
        acc[:] = 0.0
        stats[:] = 0.0
        walk(
            data, offsets[i], offsets[i + 1], bits, char_min, char_max, max_word, MODE_SCORE,
            no_int, 0, known, rows, idfs, unseen2, weights, acc, stats, scratch,
        )  # fmt: skip
        for m in range(n_models):
            best, p = finish_scores(acc, stats, bias, m, class_offsets[m], class_offsets[m + 1])
            labels[i, m] = best
            confidence[i, m] = p


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
    rows: np.ndarray,
    idfs: np.ndarray,
    unseen2: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray,
    class_offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Score K models in one pass: (best class int32[n, K], its softmax probability float64[n, K]).

    Model m owns columns class_offsets[m]:class_offsets[m+1] of weights and bias; best is -1
    where the text had no feature that model knows. See models.FusedModel for the arrays.
    """
    n = offsets.size - 1
    n_models = unseen2.shape[0]
    labels = np.empty((n, n_models), dtype=np.int32)
    confidence = np.empty((n, n_models), dtype=np.float64)
    args = (offsets, data, *spec, known, rows, idfs, unseen2, weights, bias, class_offsets, _NO_INT, labels, confidence)
    n_chunks = _chunks(offsets)
    if n_chunks:
        _score_parallel(n_chunks, *args)
    elif n:
        _score_serial(*args)
    return labels, confidence
