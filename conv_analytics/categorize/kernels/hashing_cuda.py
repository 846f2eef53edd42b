"""CUDA kernels: the same hashed features and linear scoring as hashing_cpu, one GPU thread per text.

Import this module only when the CUDA device is selected: importing numba.cuda fixes whether the
simulator (NUMBA_ENABLE_CUDASIM=1, used by the parity tests) or a real GPU is used.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import cuda, float64, int64

from .hashing_common import (
    MAX_CLASSES_CUDA,
    SCRATCH_SIZE,
    MODE_SCORE,
    N_GROUPS,
    N_STATS,
    finish_scores,
    walk,
)

_THREADS = 128


@cuda.jit
def _score_kernel(
    offsets, data, bits, char_min, char_max, max_word,
    rows, idf, idf_unseen, weights, scale, bias, no_int, labels, confidence,
):  # fmt: skip
    i = cuda.grid(1)
    if i >= offsets.size - 1:
        return
    acc = cuda.local.array((N_GROUPS, MAX_CLASSES_CUDA), float64)
    stats = cuda.local.array(N_STATS, float64)
    probs = cuda.local.array(MAX_CLASSES_CUDA, float64)
    buf = cuda.local.array(SCRATCH_SIZE, int64)
    for g in range(N_GROUPS):
        for c in range(bias.shape[0]):
            acc[g, c] = 0.0
    for s in range(N_STATS):
        stats[s] = 0.0
    walk(
        data, offsets[i], offsets[i + 1], bits, char_min, char_max, max_word, MODE_SCORE,
        no_int, 0, rows, idf, idf_unseen, weights, scale, acc, stats, buf,
    )  # fmt: skip
    best, p = finish_scores(acc, stats, bias, probs)
    labels[i] = best
    confidence[i] = p


class DeviceModel(NamedTuple):
    """A linear model's arrays resident on the GPU, uploaded once per model."""

    rows: object
    idf: object
    weights: object
    scale: object
    bias: object


def upload(rows: np.ndarray, idf: np.ndarray, weights: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> DeviceModel:
    if bias.shape[0] > MAX_CLASSES_CUDA:
        raise ValueError(f"the CUDA kernels handle at most {MAX_CLASSES_CUDA} classes, got {bias.shape[0]}")
    return DeviceModel(*(cuda.to_device(np.ascontiguousarray(a)) for a in (rows, idf, weights, scale, bias)))


def score_linear(
    offsets: np.ndarray,
    data: np.ndarray,
    spec: tuple[int, int, int, int],
    model: DeviceModel,
    idf_unseen: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as hashing_cpu.score_linear, computed on the GPU."""
    n = offsets.size - 1
    labels = np.empty(n, dtype=np.int32)
    confidence = np.empty(n, dtype=np.float64)
    if n == 0:
        return labels, confidence
    d_offsets = cuda.to_device(np.ascontiguousarray(offsets))
    d_data = cuda.to_device(data if data.size else np.zeros(1, dtype=np.uint8))
    d_labels = cuda.device_array(n, dtype=np.int32)
    d_conf = cuda.device_array(n, dtype=np.float64)
    no_int = cuda.device_array(1, dtype=np.int32)
    blocks = (n + _THREADS - 1) // _THREADS
    _score_kernel[blocks, _THREADS](
        d_offsets, d_data, *spec, model.rows, model.idf, idf_unseen,
        model.weights, model.scale, model.bias, no_int, d_labels, d_conf,
    )  # fmt: skip
    d_labels.copy_to_host(labels)
    d_conf.copy_to_host(confidence)
    return labels, confidence
