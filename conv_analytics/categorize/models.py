"""A fitted linear text classifier over hashed features: predict on CPU or CUDA, save and load."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from conv_analytics.text.arrow import utf8_buffers

from .device import Device
from .features import FeatureSpec, Texts, Vocabulary
from .kernels import hashing_cpu
from .kernels.hashing_cpu import EXTRA_KNOWN, EXTRA_NORM_HI, EXTRA_NORM_LO, MAX_MODELS, N_EXTRA

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"


@dataclass
class LinearModel:
    """Multinomial logistic regression on TF-IDF-weighted hashed features.

    Texts with no known feature, or whose best probability is below `threshold`, get `fallback`
    (the abstain label, "other" by default) with their low probability as confidence.
    """

    task: str
    labels: list[str]
    spec: FeatureSpec
    vocab: Vocabulary
    weights: np.ndarray  # float32[R, C]
    bias: np.ndarray  # float64[C]
    fallback: str = "other"
    threshold: float = 0.0
    info: dict = field(default_factory=dict)
    _fused: FusedModel | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.weights = np.ascontiguousarray(self.weights, dtype=np.float32)
        self.bias = np.ascontiguousarray(self.bias, dtype=np.float64)
        if self.weights.shape != (self.vocab.codes.size, len(self.labels)):
            raise ValueError(
                f"weights {self.weights.shape} do not match {self.vocab.codes.size} features "
                f"x {len(self.labels)} labels"
            )
        if self.bias.shape != (len(self.labels),):
            raise ValueError("bias must have one value per label")

    @property
    def fused(self) -> FusedModel:
        """This model alone in the scoring layout (built on first use)."""
        if self._fused is None:
            self._fused = FusedModel([self])
        return self._fused

    def predict_indices(self, texts: Texts, device: Device = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """(class index, confidence); index len(labels) means the fallback label."""
        best, confidence = self.fused.predict_indices(texts, device)
        return best[:, 0], confidence[:, 0]

    def abstain(self, best: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Replace unknown (-1) and under-threshold predictions by the fallback label's index."""
        best = best.copy()
        best[(best < 0) | (confidence < self.threshold)] = self._fallback_index
        return best

    @property
    def _fallback_index(self) -> int:
        return self.labels.index(self.fallback) if self.fallback in self.labels else len(self.labels)

    def decode(self, indices: np.ndarray) -> pa.Array:
        """Class indices -> string labels without a Python object per row."""
        names = pa.array([*self.labels, self.fallback], type=pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(indices, type=pa.int32()), names).dictionary_decode()

    def predict(self, texts: Texts, device: Device = "cpu") -> tuple[pa.Array, np.ndarray]:
        best, confidence = self.predict_indices(texts, device)
        return self.decode(best), confidence

    def save(self, directory: str | Path) -> Path:
        """Write to directory/<task>/, the layout `Categorizer.load(directory)` reads."""
        out = Path(directory) / self.task
        out.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "labels": self.labels,
            "fallback": self.fallback,
            "threshold": self.threshold,
            "features": self.spec.to_dict(),
            "idf_unseen": self.vocab.idf_unseen,
            "info": self.info,
        }
        np.savez_compressed(
            out / ARRAYS_FILE,
            codes=self.vocab.codes,
            idf=self.vocab.idf,
            weights=self.weights,
            bias=self.bias,
        )
        (out / MODEL_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> LinearModel:
        """Read a folder written by `save` (directory/<task>/)."""
        folder = Path(directory)
        try:
            meta = json.loads((folder / MODEL_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{folder}: not a saved model ({exc})") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{folder}: model format {meta.get('format_version')} is not {FORMAT_VERSION}")
        with np.load(folder / ARRAYS_FILE) as arrays:
            vocab = Vocabulary(
                arrays["codes"].astype(np.int32), arrays["idf"].astype(np.float32), float(meta["idf_unseen"])
            )
            return cls(
                task=meta["task"],
                labels=list(meta["labels"]),
                spec=FeatureSpec.from_dict(meta["features"]),
                vocab=vocab,
                weights=arrays["weights"],
                bias=arrays["bias"],
                fallback=meta.get("fallback", "other"),
                threshold=float(meta.get("threshold", 0.0)),
                info=meta.get("info", {}),
            )


class FusedModel:
    """Linear models over the same features, scored in one pass over each text.

    Scoring layout: one joint vocabulary (sorted codes; `known`: one bit per code, `rank`: how
    many known codes precede each 64-bit word of it, so a known code's row is its rank, found
    without a table per code) and one float32 weight row per joint feature: all models' class
    weights side by side, pre-multiplied by IDF and group scale, then N_EXTRA columns per model:
    the norm's share (the feature's IDF squared, or the unseen IDF squared where the model lacks
    it, split into two float32s whose float64 sum is exact) and a 1 where the model knows it.
    """

    def __init__(self, models: list[LinearModel]) -> None:
        if not 1 <= len(models) <= MAX_MODELS:
            raise ValueError(f"can fuse 1..{MAX_MODELS} models, got {len(models)}")
        spec = models[0].spec
        if any(m.spec != spec for m in models):
            raise ValueError("fused models must share one feature spec")
        self.models = models
        self.spec = spec
        codes = np.unique(np.concatenate([m.vocab.codes for m in models]))
        known = np.zeros((spec.n_codes + 63) // 64, dtype=np.uint64)
        np.bitwise_or.at(known, codes >> 6, np.left_shift(np.uint64(1), (codes & 63).astype(np.uint64)))
        self.known = known.view(np.int64)  # signed words: Numba keeps int64 bit arithmetic exact
        per_word = np.bincount(codes >> 6, minlength=known.size)
        self.rank = np.concatenate([[0], np.cumsum(per_word)[:-1]]).astype(np.int32)
        sizes = [len(m.labels) for m in models]
        self.class_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n_classes = int(self.class_offsets[-1])
        self.unseen2 = np.array([m.vocab.idf_unseen**2 for m in models], dtype=np.float64)
        self.weights = np.zeros((codes.size, n_classes + N_EXTRA * len(models)), dtype=np.float32)
        self.bias = np.concatenate([m.bias for m in models]).astype(np.float64)
        group_scale = spec.scale()
        for k, model in enumerate(models):
            at = np.searchsorted(codes, model.vocab.codes)
            scale = model.vocab.idf.astype(np.float64) * group_scale[model.vocab.codes // spec.dim]
            lo, hi = self.class_offsets[k], self.class_offsets[k + 1]
            self.weights[at, lo:hi] = scale[:, None] * model.weights
            idf = np.full(codes.size, np.float32(model.vocab.idf_unseen), dtype=np.float32)
            idf[at] = model.vocab.idf
            square = idf.astype(np.float64) ** 2  # exact: a float32 squared fits a float64
            col = n_classes + N_EXTRA * k
            self.weights[:, col + EXTRA_NORM_HI] = square
            self.weights[:, col + EXTRA_NORM_LO] = square - self.weights[:, col + EXTRA_NORM_HI]
            self.weights[at, col + EXTRA_KNOWN] = 1.0
        self._device_model = None

    def predict_indices(self, texts: Texts, device: Device = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """(class index int32[n, K], confidence float64[n, K]) with each model's fallback applied."""
        offsets, data = utf8_buffers(texts)
        if device == "cuda":
            from .kernels import hashing_cuda

            if self._device_model is None:
                self._device_model = hashing_cuda.upload(*self._arrays())
            best, confidence = hashing_cuda.score_linear(offsets, data, self.spec.kernel_args(), self._device_model)
        else:
            best, confidence = hashing_cpu.score_linear(offsets, data, self.spec.kernel_args(), *self._arrays())
        return self.abstain(best, confidence), confidence

    def cpu_scoring(self, n: int) -> tuple | None:
        """What the CPU sentiment kernel takes to score these models in its pass over n texts
        (sentiment.vader_compound's `linear`): the hash bits, the arrays, and the (labels,
        confidence) it fills, which `abstain` turns into predict_indices' result. None where the
        features include character n-grams, which that pass does not make."""
        if self.spec.char_max:
            return None
        labels = np.empty((n, len(self.models)), dtype=np.int32)
        confidence = np.empty((n, len(self.models)), dtype=np.float64)
        return (self.spec.bits, *self._arrays(), labels, confidence)

    def abstain(self, best: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """Each model's fallback applied to the kernels' best classes (in place)."""
        for k, model in enumerate(self.models):
            best[:, k] = model.abstain(best[:, k], confidence[:, k])
        return best

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.known, self.rank, self.unseen2, self.weights, self.bias, self.class_offsets)
