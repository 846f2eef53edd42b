"""CPU kernels for training: document frequencies, the TF-IDF sparse matrix, and the sparse products
that multinomial logistic regression needs (X @ W and X.T @ R), parallel without write races."""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numba.extending import register_jitable

PARALLEL_MIN_WORK = 1 << 20  # multiply-adds under which one thread beats the pool


@register_jitable(_nrt=False)
def code_run(codes, k, end):
    """At k in a text's sorted codes: the code, how many times it repeats from there (its term
    frequency), and where the next code starts."""
    c = codes[k]
    tf = 0
    while k < end and codes[k] == c:
        tf += 1
        k += 1
    return c, tf, k


@njit(parallel=True, cache=True)
def sort_segments(starts, codes):
    """Sort each text's feature codes in place, so equal codes sit together."""
    for i in prange(starts.size - 1):
        codes[starts[i] : starts[i + 1]].sort()


@njit(cache=True)
def document_frequency(starts, codes, n_codes):
    """How many texts contain each code (codes sorted within each text)."""
    df = np.zeros(n_codes, dtype=np.int64)
    for i in range(starts.size - 1):
        last = -1
        for k in range(starts[i], starts[i + 1]):
            c = codes[k]
            if c != last:
                df[c] += 1
                last = c
    return df


@njit(parallel=True, cache=True)
def known_counts(starts, codes, rows):
    """Per text, how many distinct codes it holds that the vocabulary knows (rows >= 0)."""
    n = starts.size - 1
    counts = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        last = -1
        for k in range(starts[i], starts[i + 1]):
            c = codes[k]
            if c != last:
                last = c
                if rows[c] >= 0:
                    counts[i] += 1
    return counts


@njit(parallel=True, cache=True)
def _fill_tfidf(starts, codes, rows, idf, idf_unseen, dim, scale, n_groups, indptr, indices, values):
    """Row i: tf * idf * scale[group] / sqrt(sum over the group's occurrences of idf**2).

    This is exactly what the scoring kernel computes while streaming (see hashing_cpu.walk), so
    a model trained on these rows scores identically at prediction time.
    """
    for i in prange(starts.size - 1):
        norm2 = np.zeros(n_groups, dtype=np.float64)
        for k in range(starts[i], starts[i + 1]):
            r = rows[codes[k]]
            w = float(idf[r]) if r >= 0 else idf_unseen
            norm2[codes[k] // dim] += w * w
        out = indptr[i]
        k = starts[i]
        end = starts[i + 1]
        while k < end:
            c, tf, k = code_run(codes, k, end)
            r = rows[c]
            if r >= 0:
                g = c // dim
                indices[out] = r
                values[out] = tf * float(idf[r]) * scale[g] / np.sqrt(norm2[g])
                out += 1


def tfidf_matrix(
    starts: np.ndarray,
    codes: np.ndarray,
    rows: np.ndarray,
    idf: np.ndarray,
    idf_unseen: float,
    dim: int,
    scale: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (indptr, indices, values) of the model's inputs; codes must be sorted per text."""
    counts = known_counts(starts, codes, rows)
    indptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    values = np.empty(int(indptr[-1]), dtype=np.float64)
    _fill_tfidf(starts, codes, rows, idf, idf_unseen, dim, scale, scale.size, indptr, indices, values)
    return indptr, indices, values


@njit(cache=True)
def transpose(indptr, indices, values, n_cols):
    """CSR -> CSC (as the CSR of the transpose), for race-free X.T @ R."""
    counts = np.zeros(n_cols + 1, dtype=np.int64)
    for k in range(indices.size):
        counts[indices[k] + 1] += 1
    t_indptr = np.cumsum(counts)
    fill = t_indptr[:-1].copy()
    t_indices = np.empty(indices.size, dtype=np.int32)
    t_values = np.empty(indices.size, dtype=np.float64)
    for i in range(indptr.size - 1):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            t_indices[fill[j]] = i
            t_values[fill[j]] = values[k]
            fill[j] += 1
    return t_indptr, t_indices, t_values


@register_jitable
def _sparse_row(i, indptr, indices, values, dense, out):
    for c in range(dense.shape[1]):
        out[i, c] = 0.0
    for k in range(indptr[i], indptr[i + 1]):
        v = values[k]
        j = indices[k]
        for c in range(dense.shape[1]):
            out[i, c] += v * dense[j, c]


@njit(parallel=True, cache=True)
def _sparse_dot_parallel(indptr, indices, values, dense, out):
    for i in prange(indptr.size - 1):
        _sparse_row(i, indptr, indices, values, dense, out)


@njit(cache=True)
def _sparse_dot_serial(indptr, indices, values, dense, out):
    for i in range(indptr.size - 1):
        _sparse_row(i, indptr, indices, values, dense, out)


def sparse_dot(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, dense: np.ndarray, out: np.ndarray) -> None:
    """out = X @ dense for CSR X, one output row per parallel iteration (serial when small)."""
    if indices.size * dense.shape[1] >= PARALLEL_MIN_WORK:
        _sparse_dot_parallel(indptr, indices, values, dense, out)
    else:
        _sparse_dot_serial(indptr, indices, values, dense, out)


@njit(cache=True)
def dot(a, b):
    """Serial dot product: deterministic, and free of BLAS threads fighting over busy cores."""
    total = 0.0
    for i in range(a.size):
        total += a[i] * b[i]
    return total


@njit(cache=True)
def axpy(a, x, y):
    """y += a * x in place (no temporaries)."""
    for i in range(x.size):
        y[i] += a * x[i]
