"""CPU kernels for topic discovery: content-word hashing, sublinear TF-IDF, projection onto the
model's reduced space, nearest-centre assignment, and greedy modularity merging of micro-clusters.

Tokens are read exactly as hashing_cpu reads them (same word bytes, same lowercasing, same FNV-1a
hash); stop words, punctuation and tokens of digits only are dropped before the 1-2-grams are
formed, so a bigram joins two neighbouring content words ("train ticket" from "a train ticket");
a text made only of stop words keeps them all.

`project_text` and `best_centre` are `register_jitable`: compiled into these `njit` kernels and into
the CUDA kernel of topics_cuda, so both paths compute one assignment the same way. Tokens are hashed
by hashing_cpu's functions (a change there empties the cache: see the package's `__init__`).

The three parallel fastmath kernels (`embed`, `assign`, `assign_embedded`) run only as loaded from
Numba's on-disk cache (`CacheLoaded`): loaded, they compute other last bits than the same kernels
freshly compiled, so a process that compiled them would fit other topics than the processes after it.
"""

from __future__ import annotations

import functools
import logging
import math
import pickle
import subprocess
import sys
from collections.abc import Callable

import numpy as np
from numba import njit, prange, typeof
from numba.core.caching import FunctionCache
from numba.core.typing.typeof import Purpose
from numba.extending import register_jitable

from .hashing_cpu import _FNV_OFFSET, _SEED_BIGRAM, _SEED_WORD, WORD_BYTE, bucket, fnv_byte, fnv_word32, lower_byte
from .train_cpu import code_run, known_counts

MAX_DIM_CUDA = 256  # reduced dimensions the CUDA kernel holds per thread


@register_jitable
def _slot(h, mask):
    """Slot of a 32-bit token hash in a stop table (high bits folded in, as in `bucket`)."""
    return (h ^ (h >> 13) ^ (h >> 23)) & mask


@njit(cache=True)
def stop_table(stop_hashes):
    """The stop-word token hashes (32-bit values) as an open-addressing set: a power-of-two array
    at most a quarter full, -1 in the empty slots. A lookup probes one or two slots, where a
    binary search of the sorted hashes took a dozen unpredictable branches per token."""
    size = 2
    while size < 4 * stop_hashes.size:
        size *= 2
    table = np.full(size, -1, dtype=np.int64)
    mask = size - 1
    for h in stop_hashes:
        i = _slot(h, mask)
        while table[i] != -1 and table[i] != h:
            i = (i + 1) & mask
        table[i] = h
    return table


@register_jitable
def _is_stop(h, table):
    mask = table.size - 1
    i = _slot(h, mask)
    while True:
        t = table[i]
        if t == h:
            return True
        if t == -1:
            return False
        i = (i + 1) & mask


@register_jitable
def _content_codes(data, start, end, bits, stops, out, pos):
    """Write (when out is not empty) the codes of data[start:end]; return how many there are."""
    k = 0
    prev = -1
    p = start
    while p < end:
        b = int(data[p])
        if WORD_BYTE[b] == 0:
            p += 1
            continue
        h = _FNV_OFFSET ^ _SEED_WORD
        before = 0
        digits = True
        while True:
            h = fnv_byte(h, lower_byte(b, before))
            digits = digits and 48 <= b <= 57
            before = b
            p += 1
            if p == end:
                break
            b = int(data[p])
            if WORD_BYTE[b] == 0:
                break
        if digits or _is_stop(h, stops):
            continue
        if out.size:
            out[pos + k] = bucket(h, bits)
        k += 1
        if prev >= 0:
            if out.size:
                out[pos + k] = (1 << bits) + bucket(fnv_word32(fnv_word32(_FNV_OFFSET ^ _SEED_BIGRAM, prev), h), bits)
            k += 1
        prev = h
    return k


@register_jitable
def _text_codes(data, start, end, bits, stops, no_stops, out, pos):
    """A text of stop words only ("how do I say") keeps them: better its own words than nothing.
    `stops` and `no_stops` are stop tables (`stop_table`), the second empty."""
    k = _content_codes(data, start, end, bits, stops, out, pos)
    if k == 0:
        k = _content_codes(data, start, end, bits, no_stops, out, pos)
    return k


@njit(parallel=True, cache=True)
def _count_codes(offsets, data, bits, stops, counts):
    none = np.zeros(0, dtype=np.int32)
    no_stops = np.full(2, -1, dtype=np.int64)
    for i in prange(offsets.size - 1):
        counts[i] = _text_codes(data, offsets[i], offsets[i + 1], bits, stops, no_stops, none, 0)


@njit(parallel=True, cache=True)
def _write_codes(offsets, data, bits, stops, starts, codes):
    no_stops = np.full(2, -1, dtype=np.int64)
    for i in prange(offsets.size - 1):
        _text_codes(data, offsets[i], offsets[i + 1], bits, stops, no_stops, codes, starts[i])
        codes[starts[i] : starts[i + 1]].sort()


def content_codes(
    offsets: np.ndarray, data: np.ndarray, bits: int, stop_hashes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(starts int64[n+1], codes int32[total]): each text's content 1-2-gram buckets, sorted;
    unigrams in [0, 2**bits), bigrams in [2**bits, 2**(bits+1))."""
    stops = stop_table(np.asarray(stop_hashes, dtype=np.int64))
    counts = np.zeros(offsets.size - 1, dtype=np.int64)
    _count_codes(offsets, data, bits, stops, counts)
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    codes = np.empty(int(starts[-1]), dtype=np.int32)
    _write_codes(offsets, data, bits, stops, starts, codes)
    return starts, codes


@njit(cache=True)
def token_hashes(offsets, data):
    """The hash of each text read as one token (used to hash the stop words themselves)."""
    out = np.empty(offsets.size - 1, dtype=np.int64)
    for i in range(offsets.size - 1):
        h = _FNV_OFFSET ^ _SEED_WORD
        before = 0
        for p in range(offsets[i], offsets[i + 1]):
            b = int(data[p])
            h = fnv_byte(h, lower_byte(b, before))
            before = b
        out[i] = h
    return out


@register_jitable
def _weight(tf, idf):
    """Sublinear term frequency: a word said five times is not five times the topic."""
    return (1.0 + math.log(tf)) * idf


@njit(parallel=True, cache=True)
def _fill_tfidf(starts, codes, rows, idf, indptr, indices, values):
    for i in prange(starts.size - 1):
        out = indptr[i]
        k = starts[i]
        end = starts[i + 1]
        norm2 = 0.0
        while k < end:
            c, tf, k = code_run(codes, k, end)
            r = rows[c]
            if r >= 0:
                w = _weight(tf, idf[r])
                indices[out] = r
                values[out] = w
                norm2 += w * w
                out += 1
        if norm2 > 0.0:
            inv = 1.0 / math.sqrt(norm2)
            for j in range(indptr[i], out):
                values[j] *= inv


def tfidf_csr(
    starts: np.ndarray, codes: np.ndarray, rows: np.ndarray, idf: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L2-normalised sublinear TF-IDF rows (indptr, indices, values) over the vocabulary rows."""
    counts = known_counts(starts, codes, rows)
    indptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    values = np.empty(int(indptr[-1]), dtype=np.float64)
    _fill_tfidf(starts, codes, rows, idf, indptr, indices, values)
    return indptr, indices, values


@register_jitable(_nrt=False)
def project_text(starts, codes, i, rows, idf, projection, z):
    """z = the TF-IDF row of text i times the projection, then unit length; return its norm before.

    The TF-IDF row's own norm only scales z, so it is never computed: the direction is all that
    cosine similarity needs. 0 means the text has no word the model knows.
    """
    d = projection.shape[1]
    for j in range(d):
        z[j] = 0.0
    k = starts[i]
    end = starts[i + 1]
    while k < end:
        c, tf, k = code_run(codes, k, end)
        r = rows[c]
        if r >= 0:
            w = _weight(tf, idf[r])
            for j in range(d):
                z[j] += w * projection[r, j]
    norm2 = 0.0
    for j in range(d):
        norm2 += z[j] * z[j]
    if norm2 == 0.0:
        return 0.0
    norm = math.sqrt(norm2)
    for j in range(d):
        z[j] /= norm
    return norm


@register_jitable(_nrt=False)
def best_centre(z, centres, thresholds):
    """(topic index, cosine) of the nearest centre; index -1 when below that topic's threshold,
    and (-1, 0.0) when there are no topics. The first of equal cosines wins.

    Four centres at a time: four independent sums keep the vector units busy where one sum would
    wait on its own previous addition (about three times faster on the CPU).
    """
    k = centres.shape[0]
    if k == 0:
        return -1, 0.0
    d = centres.shape[1]
    best = -1
    top = -2.0
    t = 0
    while t + 4 <= k:
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(d):
            x = z[j]
            s0 += x * centres[t, j]
            s1 += x * centres[t + 1, j]
            s2 += x * centres[t + 2, j]
            s3 += x * centres[t + 3, j]
        if s0 > top:
            top = s0
            best = t
        if s1 > top:
            top = s1
            best = t + 1
        if s2 > top:
            top = s2
            best = t + 2
        if s3 > top:
            top = s3
            best = t + 3
        t += 4
    while t < k:
        s = 0.0
        for j in range(d):
            s += z[j] * centres[t, j]
        if s > top:
            top = s
            best = t
        t += 1
    if best >= 0 and top < thresholds[best]:
        best = -1
    return best, top


# The child process that compiles a kernel into Numba's cache: (sys.path, module, kernel, signature) on stdin.
_COMPILE_IN_CHILD = (
    "import importlib, pickle, sys\n"
    "path, module, name, signature = pickle.loads(sys.stdin.buffer.read())\n"
    "sys.path[:0] = path\n"
    "getattr(importlib.import_module(module), name).dispatcher.compile(signature)\n"
)


class CacheLoaded:
    """A parallel fastmath kernel that runs only as loaded from Numba's on-disk cache.

    Numba's JIT and the object code it caches optimise a parallel fastmath kernel differently (the
    sums come out in other orders; numba/numba#10617), so a process that compiled the kernel would fit
    other topics than every process that loaded it, even after reloading it: the process keeps its
    own compiled symbols. So a kernel missing from the cache is compiled by a child process, which
    saves it, and every process loads it from there. Only the first process on a machine waits for
    the compilation (4 s for the three kernels, before in every process). Should the child fail (no
    writable cache), this process compiles the kernel itself, as every process then does.
    """

    def __init__(self, py_func: Callable) -> None:
        self.dispatcher = njit(parallel=True, fastmath=True, cache=True)(py_func)
        functools.update_wrapper(self, py_func)

    def __call__(self, *args):
        signature = tuple(typeof(arg, Purpose.argument) for arg in args)
        if signature not in self.dispatcher.overloads:
            if FunctionCache(self.dispatcher.py_func).load_overload(signature, self.dispatcher.targetctx) is None:
                self._compile_in_child(signature)
            self.dispatcher.compile(signature)  # a cache hit now
        return self.dispatcher(*args)

    def _compile_in_child(self, signature: tuple) -> None:
        kernel = self.dispatcher.py_func
        job = pickle.dumps((sys.path, kernel.__module__, kernel.__name__, signature))
        child = subprocess.run([sys.executable, "-c", _COMPILE_IN_CHILD], input=job, capture_output=True)
        if child.returncode != 0:
            lines = child.stderr.decode(errors="replace").strip().splitlines()
            logging.getLogger(__name__).warning(
                "compiling %s in a child process failed (%s): compiling it here",
                kernel.__name__,
                lines[-1] if lines else f"exit code {child.returncode}",
            )


@CacheLoaded
def embed(starts, codes, rows, idf, projection, out):
    """out[i] = the unit vector of text i in the reduced space (zeros when it has no known word)."""
    for i in prange(starts.size - 1):
        project_text(starts, codes, i, rows, idf, projection, out[i])


@CacheLoaded
def assign(starts, codes, rows, idf, projection, centres, thresholds, topics, scores):
    """Nearest topic of every text, -1 for texts with no known word or too far from every topic."""
    n = starts.size - 1
    d = projection.shape[1]
    n_chunks = min(n, 64)
    for chunk in prange(n_chunks):
        z = np.empty(d, dtype=np.float64)
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            if project_text(starts, codes, i, rows, idf, projection, z) == 0.0:
                topics[i] = -1
                scores[i] = 0.0
            else:
                topics[i], scores[i] = best_centre(z, centres, thresholds)


@CacheLoaded
def assign_embedded(z, centres, thresholds, topics, scores):
    """assign() for texts already embedded (rows of `embed`, zeros for a text with no known word):
    the same nearest centre and cosine, without projecting the texts again."""
    n = z.shape[0]
    n_chunks = min(n, 64)
    for chunk in prange(n_chunks):
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            known = False
            for j in range(z.shape[1]):
                if z[i, j] != 0.0:
                    known = True
                    break
            if known:
                topics[i], scores[i] = best_centre(z[i], centres, thresholds)
            else:
                topics[i] = -1
                scores[i] = 0.0


@njit(cache=True)
def merge_communities(weights, gamma):
    """Greedy modularity agglomeration (Clauset-Newman-Moore) of a small weighted graph.

    Merges the pair of groups whose merge raises modularity most, until no merge raises it: the
    number of groups is what the graph supports, not a setting. gamma > 1 favours more groups.
    Returns each node's group index, numbered 0.. in order of first appearance.
    """
    k = weights.shape[0]
    w = weights.copy()
    total = w.sum()
    group = np.arange(k)
    alive = np.ones(k, dtype=np.bool_)
    degree = w.sum(axis=1) / max(total, 1e-300)
    while total > 0.0:
        best_gain = 0.0
        bi = -1
        bj = -1
        for i in range(k):
            if not alive[i]:
                continue
            for j in range(i + 1, k):
                if alive[j] and w[i, j] > 0.0:
                    gain = w[i, j] / total - gamma * degree[i] * degree[j]
                    if gain > best_gain:
                        best_gain = gain
                        bi = i
                        bj = j
        if bi < 0:
            break
        for t in range(k):
            w[bi, t] += w[bj, t]
        for t in range(k):
            w[t, bi] += w[t, bj]
            w[bj, t] = 0.0
            w[t, bj] = 0.0
        degree[bi] += degree[bj]
        degree[bj] = 0.0
        alive[bj] = False
        for t in range(k):
            if group[t] == bj:
                group[t] = bi
    out = np.full(k, -1, dtype=np.int64)
    label = np.full(k, -1, dtype=np.int64)
    n_groups = 0
    for t in range(k):
        g = group[t]
        if label[g] < 0:
            label[g] = n_groups
            n_groups += 1
        out[t] = label[g]
    return out


@njit(cache=True)
def centre_sums(z, labels, k):
    """Sum of the rows of each label 0..k-1 (labels < 0 are left out)."""
    sums = np.zeros((k, z.shape[1]))
    for i in range(z.shape[0]):
        c = labels[i]
        if c >= 0:
            for j in range(z.shape[1]):
                sums[c, j] += z[i, j]
    return sums


@njit(cache=True, fastmath=True)
def _lower_distance(z, centre, distance):
    # serial: a parallel region per seed costs more in thread wake-ups than the few thousand rows gain
    for i in range(z.shape[0]):
        s = 0.0
        for j in range(z.shape[1]):
            s += z[i, j] * centre[j]
        d = 1.0 - s if s < 1.0 else 0.0
        if d < distance[i]:
            distance[i] = d


@njit(cache=True)
def kmeans_plus_plus(z, k, uniforms):
    """Indices of k seeds chosen with probability proportional to the cosine distance to the
    nearest seed so far; uniforms[t] in [0, 1) drives pick t (the first is uniform)."""
    n = z.shape[0]
    picks = np.empty(k, dtype=np.int64)
    picks[0] = min(int(uniforms[0] * n), n - 1)
    distance = np.full(n, np.inf)
    for t in range(1, k):
        _lower_distance(z, z[picks[t - 1]], distance)
        total = distance.sum()
        if total <= 1e-12:
            picks[t] = min(int(uniforms[t] * n), n - 1)
            continue
        target = uniforms[t] * total
        acc = 0.0
        pick = n - 1
        for i in range(n):
            acc += distance[i]
            if acc > target:
                pick = i
                break
        picks[t] = pick
    return picks


@njit(parallel=True, cache=True)
def nearest_neighbours(sims, first, k):
    """Per row of sims (rows are texts first.., columns all texts): the k most similar other texts
    and their similarities, by insertion into a small sorted list (k is small)."""
    n = sims.shape[0]
    index = np.empty((n, k), dtype=np.int64)
    value = np.empty((n, k))
    for r in prange(n):
        top_i = np.full(k, -1, dtype=np.int64)
        top_v = np.full(k, -np.inf)
        for c in range(sims.shape[1]):
            v = sims[r, c]
            if c == first + r or v <= top_v[k - 1]:
                continue
            p = k - 1
            while p > 0 and top_v[p - 1] < v:
                top_v[p] = top_v[p - 1]
                top_i[p] = top_i[p - 1]
                p -= 1
            top_v[p] = v
            top_i[p] = c
        index[r] = top_i
        value[r] = top_v
    return index, value


@njit(cache=True)
def mutual_weights(nearest, sims, group, weights):
    """weights[group a, group b] += cosine for every mutual nearest-neighbour pair (a, b), both ways."""
    n, k = nearest.shape
    for i in range(n):
        for t in range(k):
            j = nearest[i, t]
            if j > i:
                for u in range(k):
                    if nearest[j, u] == i:
                        w = sims[i, t] if sims[i, t] > 0.0 else 0.0
                        weights[group[i], group[j]] += w
                        weights[group[j], group[i]] += w
                        break
