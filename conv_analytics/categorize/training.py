"""Fit the linear models: multinomial logistic regression by L-BFGS on hashed TF-IDF features,
either from labelled records or from the label/keyword/example YAML taxonomy shipped as defaults."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from .features import FeatureSpec, Texts, build_vocabulary, hashed_codes, tfidf_rows
from .kernels import train_cpu
from .models import LinearModel

TASKS = ("topic", "intent")


@dataclass(frozen=True)
class SparseRows:
    """A CSR matrix and its transpose (kept so X.T @ R is a race-free parallel product)."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    t_indptr: np.ndarray
    t_indices: np.ndarray
    t_values: np.ndarray
    n_cols: int

    @classmethod
    def from_csr(cls, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int) -> SparseRows:
        t = train_cpu.transpose(indptr, indices, values, n_cols)
        return cls(indptr, indices, values, *t, n_cols)

    @property
    def n_rows(self) -> int:
        return self.indptr.size - 1

    def dot(self, dense: np.ndarray) -> np.ndarray:
        out = np.empty((self.n_rows, dense.shape[1]), dtype=np.float64)
        train_cpu.sparse_dot(self.indptr, self.indices, self.values, dense, out)
        return out

    def t_dot(self, dense: np.ndarray, out: np.ndarray) -> None:
        """out = X.T @ dense, written into `out` (the gradient's own memory during training)."""
        train_cpu.sparse_dot(self.t_indptr, self.t_indices, self.t_values, dense, out)


def _loss_and_grad(
    theta: np.ndarray, x: SparseRows, y: np.ndarray, n_classes: int, l2: float
) -> tuple[float, np.ndarray]:
    """Mean cross-entropy + l2/2 * |W|^2 (bias not penalised), and its gradient."""
    n_feat = x.n_cols
    flat_w = theta[: n_feat * n_classes]
    w = flat_w.reshape(n_feat, n_classes)
    b = theta[n_feat * n_classes :]
    z = x.dot(w)
    z += b
    z -= z.max(axis=1, keepdims=True)
    n = y.size
    picked = z[np.arange(n), y]  # log-domain, so a confident wrong answer cannot underflow to log(0)
    np.exp(z, out=z)
    total = z.sum(axis=1)
    loss = float(np.mean(np.log(total) - picked)) + 0.5 * l2 * train_cpu.dot(flat_w, flat_w)
    z /= total[:, None]
    z[np.arange(n), y] -= 1.0
    z /= n
    grad = np.empty_like(theta)
    x.t_dot(z, grad[: n_feat * n_classes].reshape(n_feat, n_classes))
    train_cpu.axpy(l2, flat_w, grad[: n_feat * n_classes])
    grad[n_feat * n_classes :] = z.sum(axis=0)
    return loss, grad


def lbfgs(fun, theta: np.ndarray, max_iter: int = 300, history: int = 10, tol: float = 1e-6) -> tuple[np.ndarray, int]:
    """Minimise a smooth convex function by L-BFGS with a backtracking (Armijo) line search.

    Deterministic: same data, same answer. Stops when the gradient's largest entry or the
    relative loss change falls under `tol`. Vector updates run in place (models with many
    classes have millions of parameters, and temporaries would dominate the time).
    """
    loss, grad = fun(theta)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []  # (s, y, 1 / y.s), oldest first
    iterations = 0
    while iterations < max_iter:
        if float(np.max(np.abs(grad))) < tol:
            break
        iterations += 1
        q = grad.copy()
        alphas = []
        for s, yv, rho in reversed(pairs):
            a = rho * train_cpu.dot(s, q)
            train_cpu.axpy(-a, yv, q)
            alphas.append(a)
        if pairs:
            s, yv, _ = pairs[-1]
            q *= train_cpu.dot(s, yv) / train_cpu.dot(yv, yv)
        else:
            q /= max(train_cpu.dot(q, q) ** 0.5, 1e-12)
        for (s, yv, rho), a in zip(pairs, reversed(alphas), strict=True):
            train_cpu.axpy(a - rho * train_cpu.dot(yv, q), s, q)
        direction = q
        direction *= -1.0
        slope = train_cpu.dot(grad, direction)
        if slope >= 0:  # lost descent (numerical noise): restart from steepest descent
            pairs.clear()
            direction = -grad / max(train_cpu.dot(grad, grad) ** 0.5, 1e-12)
            slope = train_cpu.dot(grad, direction)
        step = 1.0
        candidate = np.empty_like(theta)
        while True:
            np.copyto(candidate, theta)
            train_cpu.axpy(step, direction, candidate)
            new_loss, new_grad = fun(candidate)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s = direction
        s *= step  # candidate - theta, without another pass over theta
        yv = new_grad.copy()
        train_cpu.axpy(-1.0, grad, yv)
        sy = train_cpu.dot(s, yv)
        if sy > 1e-12:
            pairs.append((s, yv, 1.0 / sy))
            if len(pairs) > history:
                pairs.pop(0)
        change = abs(loss - new_loss) / max(abs(loss), abs(new_loss), 1.0)
        theta, loss, grad = candidate, new_loss, new_grad
        if change < tol * 1e-3:
            break
    return theta, iterations


def fit_linear(
    texts: Texts,
    labels: Sequence[str],
    task: str,
    spec: FeatureSpec | None = None,
    c: float = 10.0,
    max_iter: int = 300,
    min_df: int = 1,
    fallback: str = "other",
    threshold: float = 0.0,
) -> LinearModel:
    """Fit multinomial logistic regression; `c` is the inverse L2 strength as in scikit-learn."""
    spec = spec or FeatureSpec()
    labels = [str(label) for label in labels]
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"{task}: need at least two distinct labels to train, got {classes}")
    starts, codes = hashed_codes(texts, spec)
    if starts.size - 1 != len(labels):
        raise ValueError(f"{task}: {starts.size - 1} texts but {len(labels)} labels")
    vocab = build_vocabulary(starts, codes, spec, min_df)
    x = SparseRows.from_csr(*tfidf_rows(starts, codes, vocab, spec), vocab.codes.size)
    index = {label: i for i, label in enumerate(classes)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    n_classes = len(classes)
    theta0 = np.zeros(x.n_cols * n_classes + n_classes, dtype=np.float64)
    l2 = 1.0 / (c * y.size)
    theta, iterations = lbfgs(lambda t: _loss_and_grad(t, x, y, n_classes, l2), theta0, max_iter=max_iter)
    weights = theta[: x.n_cols * n_classes].reshape(x.n_cols, n_classes)
    bias = theta[x.n_cols * n_classes :]
    return LinearModel(
        task=task,
        labels=classes,
        spec=spec,
        vocab=vocab,
        weights=weights,
        bias=bias,
        fallback=fallback,
        threshold=threshold,
        info={"n_train": int(y.size), "c": c, "iterations": iterations, "n_features": int(x.n_cols)},
    )


def accuracy_and_macro_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> tuple[float, float]:
    """Accuracy, and F1 averaged over the labels present in y_true or y_pred."""
    true = np.asarray(y_true, dtype=object)
    pred = np.asarray(y_pred, dtype=object)
    if true.size == 0:
        return 0.0, 0.0
    accuracy = float(np.mean(true == pred))
    f1s = []
    for label in sorted(set(true.tolist()) | set(pred.tolist())):
        tp = float(np.sum((true == label) & (pred == label)))
        fp = float(np.sum((true != label) & (pred == label)))
        fn = float(np.sum((true == label) & (pred != label)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return accuracy, float(np.mean(f1s))


def holdout_split(labels: Sequence[str], fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) index arrays; labels with one example stay in train."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=object)
    train, valid = [], []
    for label in sorted(set(labels.tolist())):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_valid = int(round(idx.size * fraction)) if idx.size > 1 else 0
        valid.append(idx[:n_valid])
        train.append(idx[n_valid:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


# --- the shipped defaults: a YAML taxonomy turned into training texts -------------------------


def load_taxonomy(path: str | Path | None = None) -> dict:
    """The taxonomy YAML at `path` (the taxonomy setting), else the one shipped here."""
    if not path:
        text = resources.files(__package__).joinpath("taxonomy.yaml").read_text(encoding="utf-8")
        source = "shipped taxonomy.yaml"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read the taxonomy {path}: {exc}") from exc
        source = str(path)
    try:
        taxonomy = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: invalid YAML: {exc}") from exc
    _check_taxonomy(taxonomy, source)
    return taxonomy


def _check_taxonomy(taxonomy: object, source: str) -> None:
    if not isinstance(taxonomy, dict):
        raise ValueError(f"{source}: expected a mapping with 'topic' and 'intent' sections")
    for task in TASKS:
        section = taxonomy.get(task)
        if not isinstance(section, dict) or not isinstance(section.get("labels"), dict):
            raise ValueError(f"{source}: '{task}' needs a 'labels' mapping")
        if len(section["labels"]) < 2:
            raise ValueError(f"{source}: '{task}' needs at least two labels")
        for name, label in section["labels"].items():
            if not isinstance(label, dict):
                raise ValueError(f"{source}: {task} label {name!r} must be a mapping")
            phrases = [*label.get("keywords", []), *label.get("examples", [])]
            if not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
                raise ValueError(f"{source}: {task} label {name!r} needs non-empty keywords/examples")


def parse_char_ngrams(value: object) -> dict[str, int]:
    """ "off" (or false) -> no character n-grams; "3-5" -> 3- to 5-grams; "4" -> 4-grams only."""
    if value is False or str(value).strip().lower() in ("off", "none", "0", "false"):
        return {"char_min": 1, "char_max": 0}
    text = str(value).strip()
    try:
        low, _, high = text.partition("-")
        return {"char_min": int(low), "char_max": int(high or low)}
    except ValueError:
        raise ValueError(f"character n-grams must be 'off', 'N' or 'N-M', got {value!r}") from None


def taxonomy_examples(taxonomy: dict, task: str) -> tuple[list[str], list[str]]:
    """One training text per keyword and per example phrase."""
    texts: list[str] = []
    labels: list[str] = []
    for name, label in taxonomy[task]["labels"].items():
        for phrase in [*label.get("keywords", []), *label.get("examples", [])]:
            texts.append(phrase)
            labels.append(str(name))
    return texts, labels


def fit_taxonomy(taxonomy: dict, task: str) -> LinearModel:
    """The default model of a task, fitted in well under a second from the taxonomy's phrases."""
    section = taxonomy[task]
    texts, labels = taxonomy_examples(taxonomy, task)
    model = fit_linear(
        texts,
        labels,
        task=task,
        spec=FeatureSpec(bits=int(section.get("bits", 18)), **parse_char_ngrams(section.get("char_ngrams", "off"))),
        c=float(section.get("c", 20.0)),
        fallback=str(section.get("fallback", "other")),
        threshold=float(section.get("threshold", 0.3)),
    )
    model.info["source"] = "taxonomy"
    return model
