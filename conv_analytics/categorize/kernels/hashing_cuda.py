"""CUDA kernels: the same hashed features and linear scoring as hashing_cpu, one GPU thread per text.

Import this module only when the CUDA device is selected: importing numba.cuda fixes whether the
simulator (NUMBA_ENABLE_CUDASIM=1, used by the parity tests) or a real GPU is used.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import cuda, float64, int64

from .hashing_cpu import (
    MAX_CLASSES_CUDA,
    MAX_MODELS,
    MODE_SCORE,
    N_EXTRA,
    N_GROUPS,
    SCRATCH_SIZE,
    store_best,
    walk,
)

_THREADS = 128


@cuda.jit
def _score_kernel(
    offsets, data, bits, char_min, char_max, max_word,
    known, rank, unseen2, weights, bias, class_offsets, no_int, labels, confidence,
):  # fmt: skip
    i = cuda.grid(1)
    if i >= offsets.size - 1:
        return
    acc = cuda.local.array((N_GROUPS, MAX_CLASSES_CUDA), float64)
    scratch = cuda.local.array(SCRATCH_SIZE, int64)
    for g in range(N_GROUPS):
        for c in range(weights.shape[1]):
            acc[g, c] = 0.0
    walk(
        data, offsets[i], offsets[i + 1], bits, char_min, char_max, max_word, MODE_SCORE,
        no_int, 0, known, rank, unseen2, weights, acc, scratch,
    )  # fmt: skip
    store_best(acc, bias, class_offsets, i, labels, confidence)


class DeviceModel(NamedTuple):
    """A fused model's arrays resident on the GPU, uploaded once."""

    known: object
    rank: object
    unseen2: object
    weights: object
    bias: object
    class_offsets: object


def upload(
    known: np.ndarray,
    rank: np.ndarray,
    unseen2: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray,
    class_offsets: np.ndarray,
) -> DeviceModel:
    if weights.shape[1] > MAX_CLASSES_CUDA or unseen2.shape[0] > MAX_MODELS:
        raise ValueError(
            f"the CUDA kernels score at most {MAX_MODELS} models with {MAX_CLASSES_CUDA} weight columns "
            f"(their classes plus {N_EXTRA} per model) at once, got {unseen2.shape[0]} with {weights.shape[1]}"
        )
    arrays = (known, rank, unseen2, weights, bias, class_offsets)
    return DeviceModel(*(cuda.to_device(np.ascontiguousarray(a)) for a in arrays))


def score_linear(
    offsets: np.ndarray,
    data: np.ndarray,
    spec: tuple[int, int, int, int],
    model: DeviceModel,
) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as hashing_cpu.score_linear, computed on the GPU."""
    n = offsets.size - 1
    n_models = model.unseen2.shape[0]
    labels = np.empty((n, n_models), dtype=np.int32)
    confidence = np.empty((n, n_models), dtype=np.float64)
    if n == 0:
        return labels, confidence
    d_offsets = cuda.to_device(np.ascontiguousarray(offsets))
    d_data = cuda.to_device(data if data.size else np.zeros(1, dtype=np.uint8))
    d_labels = cuda.device_array((n, n_models), dtype=np.int32)
    d_conf = cuda.device_array((n, n_models), dtype=np.float64)
    no_int = cuda.device_array(1, dtype=np.int32)
    blocks = (n + _THREADS - 1) // _THREADS
    _score_kernel[blocks, _THREADS](
        d_offsets, d_data, *spec, model.known, model.rank, model.unseen2,
        model.weights, model.bias, model.class_offsets, no_int, d_labels, d_conf,
    )  # fmt: skip
    d_labels.copy_to_host(labels)
    d_conf.copy_to_host(confidence)
    return labels, confidence
