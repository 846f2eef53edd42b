"""CUDA kernel for topic assignment: the same projection and nearest centre as topics_cpu.assign,
one GPU thread per text (the texts' content codes are hashed on the CPU first).

Import this module only when the CUDA device is selected (see hashing_cuda).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from .topics_cpu import MAX_DIM_CUDA, best_centre, project_text

_THREADS = 128


@cuda.jit
def _score_kernel(starts, codes, rows, idf, projection, centres, thresholds, topics, scores):
    i = cuda.grid(1)
    if i >= starts.size - 1:
        return
    z = cuda.local.array(MAX_DIM_CUDA, float64)
    if project_text(starts, codes, i, rows, idf, projection, z) == 0.0:
        topics[i] = -1
        scores[i] = 0.0
    else:
        best, score = best_centre(z, centres, thresholds)
        topics[i] = best
        scores[i] = score


def assign(
    starts: np.ndarray,
    codes: np.ndarray,
    rows: np.ndarray,
    idf: np.ndarray,
    projection: np.ndarray,
    centres: np.ndarray,
    thresholds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as topics_cpu.assign, computed on the GPU: (topic int32[n], score float64[n])."""
    if projection.shape[1] > MAX_DIM_CUDA:
        raise ValueError(f"the CUDA kernel takes at most {MAX_DIM_CUDA} dimensions, got {projection.shape[1]}")
    n = starts.size - 1
    topics = np.empty(n, dtype=np.int32)
    scores = np.empty(n, dtype=np.float64)
    if n == 0:
        return topics, scores
    arrays = [np.ascontiguousarray(a) for a in (starts, codes, rows, idf, projection, centres, thresholds)]
    if arrays[1].size == 0:  # no text has a code: one unused element keeps the upload valid
        arrays[1] = np.zeros(1, dtype=np.int32)
    device = [cuda.to_device(a) for a in arrays]
    d_topics = cuda.device_array(n, dtype=np.int32)
    d_scores = cuda.device_array(n, dtype=np.float64)
    blocks = (n + _THREADS - 1) // _THREADS
    _score_kernel[blocks, _THREADS](*device, d_topics, d_scores)
    d_topics.copy_to_host(topics)
    d_scores.copy_to_host(scores)
    return topics, scores
