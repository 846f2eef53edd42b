"""A fitted linear text classifier over hashed features: predict on CPU or CUDA, save and load."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .arrow import utf8_buffers
from .device import Device
from .features import FeatureSpec, Texts, Vocabulary
from .kernels import hashing_cpu

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
    _rows: np.ndarray | None = field(default=None, init=False, repr=False)
    _device_model: object | None = field(default=None, init=False, repr=False)

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
    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = self.vocab.rows(self.spec.n_codes)
        return self._rows

    def predict_indices(self, texts: Texts, device: Device = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """(class index, confidence); index len(labels) means the fallback label."""
        offsets, data = utf8_buffers(texts)
        if device == "cuda":
            from .kernels import hashing_cuda

            if self._device_model is None:
                self._device_model = hashing_cuda.upload(
                    self.rows, self.vocab.idf, self.weights, self.spec.scale(), self.bias
                )
            best, confidence = hashing_cuda.score_linear(
                offsets, data, self.spec.kernel_args(), self._device_model, self.vocab.idf_unseen
            )
        else:
            best, confidence = hashing_cpu.score_linear(
                offsets, data, self.spec.kernel_args(), self.rows, self.vocab.idf,
                self.vocab.idf_unseen, self.weights, self.spec.scale(), self.bias,
            )  # fmt: skip
        abstain = (best < 0) | (confidence < self.threshold)
        best[abstain] = self._fallback_index
        return best, confidence

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
