"""The sentiment kernel on a CUDA GPU: one thread per text, running the CPU kernel's rule functions.

Numba compiles the ``njit`` rule functions of ``sentiment_cpu`` as device functions when a CUDA
kernel calls them, so both devices share one implementation. Threads never allocate: each text
gets scratch in device arrays at its byte offset (a text of b bytes has at most (b + 1) // 2 + 1
tokens). Arrays travel to the kernel inside tuples, which also keeps Numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1, used by the tests) from wrapping them, so the same code runs there.
"""

from __future__ import annotations

import numpy as np
from numba import config, cuda, njit

from conv_analytics.categorize.kernels.sentiment_cpu import score_range, token_room
from conv_analytics.text.arrow import readonly

THREADS_PER_BLOCK = 128
# Texts per launch are cut so scratch (about 30 bytes per text byte) stays near 2 GiB.
BATCH_BYTES = 1 << 26


@njit(cache=True, _nrt=False)
def score_one(i, texts, detect, tables, scratch, results):
    """Score text i of a batch with its own slices of the batch's scratch arrays."""
    offsets, data = texts
    ids, flags, sents, keys, counts = scratch
    start = offsets[i]
    room = token_room(offsets[i + 1] - start)
    base = start + 2 * i
    key_base = start + 4 * i
    own = (
        ids[base : base + room],
        flags[base : base + room],
        sents[base : base + room],
        keys[key_base : key_base + 2 * room + 1],
        counts[key_base : key_base + 2 * room + 1],
    )
    score_range(i, i + 1, offsets, data, detect, tables, own, results[0], results[1], None, None)


@cuda.jit
def _score_kernel(texts, detect, tables, scratch, results):
    i = cuda.grid(1)
    if i < texts[0].shape[0] - 1:
        score_one(i, texts, detect, tables, scratch, results)


_device_tables: dict[tuple[int, ...], tuple] = {}


def _on_device(array: np.ndarray):
    return array if config.ENABLE_CUDASIM else cuda.to_device(np.ascontiguousarray(array))


def _tables_on_device(tables: tuple) -> tuple:
    """Tables copied to the GPU once per process (they never change)."""
    key = tuple(id(a) for a in tables)
    if key not in _device_tables:
        _device_tables[key] = (tables, tuple(_on_device(a) for a in tables))
    return _device_tables[key][1]


def _batches(offsets: np.ndarray) -> list[tuple[int, int]]:
    n = len(offsets) - 1
    bounds = []
    lo = 0
    while lo < n:
        hi = int(np.searchsorted(offsets, offsets[lo] + BATCH_BYTES, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def score_texts_cuda(
    offsets: np.ndarray, data: np.ndarray, detect: bool, tables: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """(unrounded compound, flagged-for-pre-pass) per text, computed on the GPU."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.float64)
    flagged = np.zeros(n, dtype=np.uint8)
    device_tables = _tables_on_device(tables)
    for lo, hi in _batches(offsets):
        batch_offsets = (offsets[lo : hi + 1] - offsets[lo]).astype(np.int64)
        batch_data = data[offsets[lo] : offsets[hi]]
        if batch_data.size == 0:
            batch_data = np.zeros(1, dtype=np.uint8)
        count = hi - lo
        room = int(batch_offsets[-1]) + 4 * count + 8
        alloc = np.empty if config.ENABLE_CUDASIM else cuda.device_array
        scratch = tuple(alloc(room, dtype) for dtype in (np.int32, np.uint8, np.float64, np.float64, np.int64))
        results = (
            _on_device(np.zeros(count, np.float64)),
            _on_device(np.zeros(count, np.uint8)),
        )
        texts = (_on_device(readonly(batch_offsets)), _on_device(readonly(batch_data)))
        blocks = (count + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        _score_kernel[blocks, THREADS_PER_BLOCK](texts, detect, device_tables, scratch, results)
        if config.ENABLE_CUDASIM:
            out[lo:hi], flagged[lo:hi] = results
        else:
            out[lo:hi] = results[0].copy_to_host()
            flagged[lo:hi] = results[1].copy_to_host()
    return out, flagged
