"""What the hashed features are (one spec shared by training and prediction) and host-side helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from conv_analytics.text.arrow import utf8_buffers

from .kernels import hashing_cpu, train_cpu
from .kernels.hashing_cpu import MAX_CHAR_SPAN, MAX_WORD

Texts = Sequence[str | None] | pa.Array | pa.ChunkedArray


@dataclass(frozen=True)
class FeatureSpec:
    """Hashed word 1-2-grams plus character n-grams of words, each group L2-normalised and scaled.

    bits: log2 of the buckets per group; char_max 0 turns character n-grams off; max_word cuts
    very long "words" (URLs, base64, a 1 MB run of letters) before their character n-grams.
    """

    bits: int = 19
    char_min: int = 3
    char_max: int = 5
    max_word: int = 24
    word_scale: float = 1.0
    char_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 10 <= self.bits <= 24:
            raise ValueError(f"bits must be in 10..24, got {self.bits}")
        if self.char_max and not (
            1 <= self.char_min <= self.char_max and self.char_max - self.char_min < MAX_CHAR_SPAN
        ):
            raise ValueError(
                f"character n-grams need 1 <= char_min <= char_max < char_min + {MAX_CHAR_SPAN}, "
                f"got {self.char_min}..{self.char_max}"
            )
        if not 1 <= self.max_word <= MAX_WORD:
            raise ValueError(f"max_word must be in 1..{MAX_WORD}, got {self.max_word}")

    @property
    def dim(self) -> int:
        return 1 << self.bits

    @property
    def n_codes(self) -> int:
        """Codes span both groups: word features in [0, dim), character features in [dim, 2*dim)."""
        return 2 * self.dim

    def kernel_args(self) -> tuple[int, int, int, int]:
        return self.bits, self.char_min, self.char_max, self.max_word

    def scale(self) -> np.ndarray:
        return np.array([self.word_scale, self.char_scale], dtype=np.float64)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature settings: {sorted(unknown)}")
        return cls(**data)


def hashed_codes(texts: Texts, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(starts, codes) with each text's codes sorted, ready for document counts and TF-IDF rows."""
    offsets, data = utf8_buffers(texts)
    starts, codes = hashing_cpu.hash_features(offsets, data, spec.kernel_args())
    train_cpu.sort_segments(starts, codes)
    return starts, codes


@dataclass(frozen=True)
class Vocabulary:
    """The hashed codes a model knows, their rows in the weight matrix, and their IDF weights."""

    codes: np.ndarray  # int32[R], ascending
    idf: np.ndarray  # float32[R]
    idf_unseen: float

    def rows(self, n_codes: int) -> np.ndarray:
        table = np.full(n_codes, -1, dtype=np.int32)
        table[self.codes] = np.arange(self.codes.size, dtype=np.int32)
        return table


def build_vocabulary(starts: np.ndarray, codes: np.ndarray, spec: FeatureSpec, min_df: int = 1) -> Vocabulary:
    """Smoothed IDF as scikit-learn computes it: ln((1 + n) / (1 + df)) + 1."""
    n_docs = starts.size - 1
    df = train_cpu.document_frequency(starts, codes, spec.n_codes)
    kept = np.flatnonzero(df >= max(min_df, 1)).astype(np.int32)
    idf = (np.log((1.0 + n_docs) / (1.0 + df[kept])) + 1.0).astype(np.float32)
    return Vocabulary(kept, idf, float(np.float32(np.log(1.0 + n_docs) + 1.0)))


def tfidf_rows(
    starts: np.ndarray, codes: np.ndarray, vocab: Vocabulary, spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR rows (indptr, indices, values) exactly as the scoring kernel weighs the features."""
    rows = vocab.rows(spec.n_codes)
    return train_cpu.tfidf_matrix(starts, codes, rows, vocab.idf, vocab.idf_unseen, spec.dim, spec.scale())
