"""Topic discovery without labels: fit topics on a corpus, name them by their own words, assign texts,
keep topic ids stable across refits and apply an analyst's curated names.

How a fit works (all parameters are arguments; nothing is read from the environment):
1. Texts become hashed content-word 1-2-grams (stop words out), weighted by sublinear TF-IDF.
2. A randomized SVD of a sample reduces them to `dims` dimensions (latent semantic analysis).
3. Spherical k-means over-clusters the sample into micro-clusters; the texts' mutual nearest
   neighbours link them into a graph, and greedy modularity merging decides how many topics the
   data holds ("auto"). With a given N, spherical k-means with k-means++ seeding runs instead,
   on a sample of the texts (LLOYD_PER_TOPIC per topic, at least LLOYD_MIN_TEXTS), over an SVD
   without power iterations; one assignment pass then places every text.
4. Lloyd passes refine the centres; each topic keeps the cosine below which a text is too far
   from it (a low quantile of its members' scores), so outliers become -1 / `other`.
5. Labels and keywords come from lemmas (spaCy's lookup tables) and their bigrams in each topic's
   members, the nearest its centre first (up to `label_sample` per topic, `label_texts` in all):
   a term scores by the share of the topic's texts that use it times the log of how much more
   often they use it than the other topics' texts do, so the words most of a topic shares win
   over names a few of its texts repeat; examples are the three nearest texts, redacted.
A refit (`previous=`) starts from the previous topics, adds only topics the previous model cannot
place, and gives matching topics their earlier ids (`align`).

Assignment (`TopicModel.assign`) runs one Numba kernel on the CPU, or its CUDA twin.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from conv_analytics.categorize.device import resolve_device
from conv_analytics.categorize.kernels import topics_cpu, train_cpu
from conv_analytics.text.arrow import as_string_array, utf8_buffers
from conv_analytics.text.redact import LABELS as REDACTION_LABELS

Texts = Sequence[str | None] | pa.Array | pa.ChunkedArray

OTHER = "other"
STOP_LANGUAGES = ("en", "es", "de", "fr", "it", "pt")
# Pieces that the tokenizers cut from English contractions ("don't" -> "don", "t").
CONTRACTION_PIECES = (
    *("s", "t", "d", "m", "ll", "re", "ve", "nt", "ain", "aren", "couldn", "didn", "doesn", "don"),
    *("hadn", "hasn", "haven", "isn", "mustn", "shan", "shouldn", "wasn", "weren", "wouldn"),
)
MODEL_FILE = "topics.npz"
KEYWORDS = 10  # kept per topic, with their weights
LABEL_CANDIDATES = 30  # terms a label is chosen from
_LETTERS = re.compile(r"[^\W\d_]+")
_TEXT_END = "\x1f"  # between the texts of a group when naming it (a control character, not a letter)
_TOKENS = re.compile(r"[^\W\d_]+|\x1f")
_PLACEHOLDERS = re.compile("|".join(map(re.escape, REDACTION_LABELS)))  # what redaction leaves: not words of a topic
FORMAT_VERSION = 1

ASSIGN_SCHEMA = pa.schema(
    [
        pa.field("topic_id", pa.int32(), nullable=False),
        pa.field("topic", pa.string(), nullable=False),
        pa.field("topic_score", pa.float64(), nullable=False),
    ]
)


@dataclass(frozen=True)
class FitSettings:
    """Knobs of a fit; the defaults are what bench/topics.py measures."""

    bits: int = 18  # hashed buckets: 2**bits
    dims: int = 128  # reduced dimensions (at most topics_cpu.MAX_DIM_CUDA for the GPU)
    max_terms: int = 30_000  # vocabulary kept, by document frequency
    sample: int = 20_000  # texts the clustering sees; all texts are assigned
    svd_sample: int = 5_000  # texts the reduced space is computed from
    micro_size: int = 5  # texts per micro-cluster in "auto"
    max_micro: int = 600
    neighbours: int = 10  # k of the mutual nearest-neighbour graph
    graph_sample: int = 6_000  # texts whose neighbours build the graph; in a refit, texts clustered for new topics
    resolution: float = 1.0  # modularity resolution: > 1 finds more, smaller topics
    outlier_quantile: float = 0.01  # share of a topic's own texts that may fall below its threshold
    # after the first product X @ X.T @ G; None: 2 when the number of topics is found ("auto"),
    # 0 when it is given (k-means needs only the leading directions; equal-k quality measured alike)
    power_iterations: int | None = None
    kmeans_iterations: int = 10
    refit_iterations: int = 0  # Lloyd passes in a refit (0 keeps the previous partition, recentred on the new texts)
    label_sample: int = 200  # texts per topic at most (the nearest its centre) whose lemmas name it,
    label_texts: int = 2_000  # and in all at most this many, or 25 per topic where that is more
    seed: int = 0

    def __post_init__(self) -> None:
        if not 10 <= self.bits <= 24:
            raise ValueError(f"bits must be in 10..24, got {self.bits}")
        if not 1 <= self.dims <= topics_cpu.MAX_DIM_CUDA:
            raise ValueError(f"dims must be in 1..{topics_cpu.MAX_DIM_CUDA} (the CUDA kernel's limit), got {self.dims}")
        if min(self.sample, self.svd_sample, self.micro_size, self.max_micro, self.neighbours, self.graph_sample) < 1:
            raise ValueError("sample sizes, micro-cluster sizes and neighbours must be at least 1")
        if self.power_iterations is not None and self.power_iterations < 0:
            raise ValueError(f"power_iterations must be None or at least 0, got {self.power_iterations}")

    def iterations_for(self, n_topics: int | str) -> int:
        """The power iterations of the randomized SVD for a fit of `n_topics`."""
        if self.power_iterations is not None:
            return self.power_iterations
        return 2 if n_topics == "auto" else 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Topic:
    """One discovered topic. `id` is stable across refits; `aliases` are ids merged into it."""

    id: int
    label: str
    size: int
    keywords: list[tuple[str, float]]
    examples: list[str]
    aliases: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "size": self.size,
            "keywords": [[k, w] for k, w in self.keywords],
            "examples": self.examples,
            "aliases": self.aliases,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Topic:
        keywords = [(str(k), float(w)) for k, w in data["keywords"]]
        return cls(int(data["id"]), data["label"], int(data["size"]), keywords, list(data["examples"]), data["aliases"])


@dataclass
class TopicModel:
    """A fitted topic model: the feature space, one centre per topic row, and the topics' ids and names.

    Rows (centres) keep the id they were discovered with (`row_ids`); curation maps those ids to
    the id shown (`curation`: id -> shown id, -1 for a deleted topic) without changing geometry.
    """

    bits: int
    stop_hashes: np.ndarray  # int64, sorted
    vocab_codes: np.ndarray  # int32[R]
    idf: np.ndarray  # float64[R]
    projection: np.ndarray  # float64[R, d]
    centres: np.ndarray  # float64[k, d], unit rows
    thresholds: np.ndarray  # float64[k]
    row_ids: np.ndarray  # int64[k]
    topics: dict[int, Topic]  # by discovered id
    curation: dict[int, int] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    # --- assignment ------------------------------------------------------------------------

    def shown_id(self, topic_id: int) -> int:
        return self.curation.get(topic_id, topic_id)

    def label_of(self, shown: int) -> str:
        return self.topics[shown].label if shown in self.topics else OTHER

    def _rows(self) -> np.ndarray:
        table = np.full(2 << self.bits, -1, dtype=np.int32)
        table[self.vocab_codes] = np.arange(self.vocab_codes.size, dtype=np.int32)
        return table

    def codes(self, texts: Texts) -> tuple[np.ndarray, np.ndarray]:
        offsets, data = utf8_buffers(texts)
        return topics_cpu.content_codes(offsets, data, self.bits, self.stop_hashes)

    def assign_rows(self, texts: Texts, device: str | None = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """(row index or -1, cosine to the nearest centre) per text, before ids and curation."""
        return self.assign_codes(*self.codes(texts), device)

    def assign_codes(
        self, starts: np.ndarray, codes: np.ndarray, device: str | None = "cpu"
    ) -> tuple[np.ndarray, np.ndarray]:
        """assign_rows of texts already cut into this model's codes (`codes()`)."""
        args = (starts, codes, self._rows(), self.idf, self.projection, self.centres, self.thresholds)
        if resolve_device(device) == "cuda":
            from conv_analytics.categorize.kernels import topics_cuda

            return topics_cuda.assign(*args)
        n = starts.size - 1
        rows = np.empty(n, dtype=np.int32)
        scores = np.empty(n, dtype=np.float64)
        topics_cpu.assign(*args, rows, scores)
        return rows, scores

    def ids_of_rows(self, rows: np.ndarray, curated: bool = True) -> np.ndarray:
        """Topic id of each row index (-1 stays -1); curated ids unless `curated` is False."""
        per_row = self.row_ids if not curated else np.array([self.shown_id(int(i)) for i in self.row_ids])
        lookup = np.append(per_row, -1).astype(np.int32)
        return lookup[rows]

    def assign(self, texts: Texts, device: str | None = None) -> pa.Table:
        """topic_id (int32, -1 = not placed), topic (label, `other` when not placed), topic_score (cosine)."""
        return self.table_of_rows(*self.assign_rows(texts, device))

    def table_of_rows(self, rows: np.ndarray, scores: np.ndarray) -> pa.Table:
        """The assignment table of row indices and scores (labels taken per distinct id, not per text)."""
        ids = self.ids_of_rows(rows)
        shown = np.unique(ids)
        labels = pa.array([self.label_of(int(i)) for i in shown], type=pa.string())
        topic = labels.take(pa.array(np.searchsorted(shown, ids))) if ids.size else pa.array([], type=pa.string())
        return pa.Table.from_arrays([pa.array(ids, type=pa.int32()), topic, pa.array(scores)], schema=ASSIGN_SCHEMA)

    # --- what an analyst sees ----------------------------------------------------------------

    def shown_topics(self) -> list[Topic]:
        """The topics as shown after curation (merged ids summed, deleted ones left out), largest first."""
        shown: dict[int, Topic] = {}
        for topic_id in sorted(self.topics):
            target = self.shown_id(topic_id)
            if target < 0:
                continue
            topic = self.topics[topic_id]
            if target not in shown:
                base = self.topics.get(target, topic)
                shown[target] = replace(base, id=target, size=0, aliases=list(base.aliases))
            entry = shown[target]
            entry.size += topic.size
            if topic_id != target and topic_id not in entry.aliases:
                entry.aliases.append(topic_id)
        return sorted(shown.values(), key=lambda t: (-t.size, t.id))

    def to_taxonomy(self, base: dict | None = None) -> dict:
        """The topics as a taxonomy `topic` section (id, label, keywords, examples), over `base`'s other sections.

        Each entry's `ids` lists the topic ids it stands for: rename the key to rename the topic,
        list several ids under one key to merge them, drop an entry to delete the topic.
        """
        labels: dict[str, dict] = {}
        for topic in self.shown_topics():
            name = topic.label if topic.label not in labels else f"{topic.label} ({topic.id})"
            keywords = [k for k, _ in topic.keywords] or [topic.label]
            labels[name] = {
                "ids": [topic.id, *topic.aliases],
                "keywords": keywords,
                "examples": [e for e in topic.examples if e.strip()] or keywords[:1],
            }
        section = {"fallback": OTHER, "threshold": 0.3, "bits": 18, "char_ngrams": "off", "labels": labels}
        return {"topic": section, **{k: v for k, v in (base or {}).items() if k != "topic"}}

    def curated(self, taxonomy: dict | str | Path) -> TopicModel:
        """A copy with an analyst's curated taxonomy applied: names by id, merges, deletions.

        Each label under `topic.labels` with an `ids` list names those topics; the first id is the
        one shown and the others become its aliases. Ids no entry lists are deleted (shown as
        -1 / `other`). A taxonomy with no `ids` at all (a hand-written one) curates nothing.
        """
        if not isinstance(taxonomy, dict):
            taxonomy = yaml.safe_load(Path(taxonomy).read_text(encoding="utf-8"))
        entries = ((taxonomy or {}).get("topic") or {}).get("labels") or {}
        if not any(isinstance(entry, dict) and entry.get("ids") for entry in entries.values()):
            return self
        curation = {topic_id: -1 for topic_id in self.topics}
        topics = {i: replace(t, aliases=[]) for i, t in self.topics.items()}
        for name, entry in entries.items():
            ids = [int(i) for i in (entry or {}).get("ids", []) if int(i) in self.topics]
            if not ids:
                continue
            for topic_id in ids:
                curation[topic_id] = ids[0]
            topics[ids[0]].label = str(name)
            topics[ids[0]].aliases = ids[1:]
        curation = {i: target for i, target in curation.items() if target != i}
        info = dict(self.info, curated_at=_now())
        return replace(self, topics=topics, curation=curation, info=info)

    # --- persistence ------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """One compressed .npz blob: the arrays plus the topics and metadata as JSON. The same model
        always gives the same bytes (no time stamps in the archive), so a refit of unchanged data
        rewrites its lake file unchanged."""
        meta = {
            "format": FORMAT_VERSION,
            "bits": self.bits,
            "topics": [t.to_dict() for t in self.topics.values()],
            "curation": {str(k): v for k, v in self.curation.items()},
            "info": self.info,
        }
        arrays = {
            "stop_hashes": self.stop_hashes,
            "vocab_codes": self.vocab_codes,
            "idf": self.idf,
            "projection": self.projection.astype(np.float32),
            "centres": self.centres,
            "thresholds": self.thresholds,
            "row_ids": self.row_ids,
            "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(entry, "w") as stream:
                    np.lib.format.write_array(stream, np.asarray(array), allow_pickle=False)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> TopicModel:
        with np.load(io.BytesIO(blob)) as arrays:
            meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"topic model format {meta.get('format')!r} is not {FORMAT_VERSION}")
            return cls(
                bits=int(meta["bits"]),
                stop_hashes=arrays["stop_hashes"],
                vocab_codes=arrays["vocab_codes"],
                idf=arrays["idf"],
                projection=arrays["projection"].astype(np.float64),
                centres=arrays["centres"],
                thresholds=arrays["thresholds"],
                row_ids=arrays["row_ids"],
                topics={t["id"]: Topic.from_dict(t) for t in meta["topics"]},
                curation={int(k): int(v) for k, v in meta["curation"].items()},
                info=meta["info"],
            )

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / MODEL_FILE).write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, directory: str | Path) -> TopicModel:
        path = Path(directory) / MODEL_FILE
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read topic model {path}: {exc}") from exc
        return cls.from_bytes(blob)

    def to_table(self) -> pa.Table:
        """One row per model version, for a Parquet lake: when, how many texts and topics, and the blob."""
        return pa.table(
            {
                "fitted_at": pa.array([self.info.get("fitted_at")], type=pa.string()),
                "n_texts": pa.array([int(self.info.get("n_texts", 0))], type=pa.int64()),
                "n_topics": pa.array([len(self.shown_topics())], type=pa.int32()),
                "model": pa.array([self.to_bytes()], type=pa.large_binary()),
            }
        )

    @classmethod
    def from_table(cls, table: pa.Table, row: int = -1) -> TopicModel:
        """The model in `row` of a to_table() table (default: the last one)."""
        if table.num_rows == 0:
            raise ValueError("the topic model table is empty")
        return cls.from_bytes(table.column("model")[row % table.num_rows].as_py())

    def refit(self, texts: Texts, n_topics: int | str = "auto", settings: FitSettings | None = None) -> TopicModel:
        """Fit again on newer texts, keeping this model's ids, labels and curation where topics match."""
        return fit(texts, n_topics, settings=settings, previous=self)


# --- fitting -----------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@cache
def stop_word_set(languages: tuple[str, ...] = STOP_LANGUAGES) -> frozenset[str]:
    """spaCy's stop words of the languages, plus the pieces contractions are cut into."""
    from conv_analytics.text.spacy_data import stop_words

    return frozenset().union(*(stop_words(lang) for lang in languages), CONTRACTION_PIECES)


def stop_hashes(languages: Sequence[str] = STOP_LANGUAGES) -> np.ndarray:
    """Sorted token hashes of the stop words (each piece the hashing tokenizer would cut them into)."""
    return _stop_hashes(tuple(languages)).copy()


@cache
def _stop_hashes(languages: tuple[str, ...]) -> np.ndarray:
    words = {piece for word in stop_word_set(languages) for piece in _pieces(word)}
    offsets, data = utf8_buffers(sorted(words))
    return np.unique(topics_cpu.token_hashes(offsets, data))


def _pieces(word: str) -> list[str]:
    """Split like the hashing tokenizer: word bytes are ASCII letters and digits and non-ASCII."""
    out, current = [], []
    for ch in word:
        if ch.isascii() and not ch.isalnum():
            if current:
                out.append("".join(current))
            current = []
        else:
            current.append(ch)
    if current:
        out.append("".join(current))
    return out


def _vocabulary(starts: np.ndarray, codes: np.ndarray, bits: int, max_terms: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, smoothed idf) of the words seen and the bigrams seen twice (once, in tiny corpora):
    a rare word still places its text, a bigram seen once is noise."""
    n = starts.size - 1
    df = train_cpu.document_frequency(starts, codes, 2 << bits)
    min_df = np.where(np.arange(df.size) < (1 << bits), 1, 2 if n >= 20 else 1)
    kept = np.flatnonzero(df >= min_df)
    if kept.size > max_terms:
        kept = np.sort(kept[np.argsort(-df[kept], kind="stable")[:max_terms]])
    idf = np.log((1.0 + n) / (1.0 + df[kept])) + 1.0
    return kept.astype(np.int32), idf


def _orthonormal(y: np.ndarray) -> np.ndarray:
    """An orthonormal basis of y's columns by Cholesky QR: two small matrix products instead of a
    Householder QR, which is what keeps the randomized SVD fast on tall matrices."""
    gram = y.T @ y
    gram[np.diag_indices_from(gram)] += 1e-10 * max(float(np.trace(gram)), 1e-300)
    # the product in single precision (a third of the time): the basis only feeds the next
    # products, and the final projection is kept as float32 anyway
    inverse = np.linalg.inv(np.linalg.cholesky(gram)).T.astype(np.float32)
    return (y.astype(np.float32) @ inverse).astype(np.float64)


def _randomized_svd(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_cols: int, dims: int, iterations: int, rng
) -> np.ndarray:
    """The top `dims` right singular vectors (n_cols x dims) of the sparse rows, by randomized SVD
    (range finder with power iterations; the small final problem solved as an eigenproblem)."""
    n_rows = indptr.size - 1
    width = min(dims + 10, n_cols, n_rows)
    t_indptr, t_indices, t_values = train_cpu.transpose(indptr, indices, values, n_cols)

    def times(dense: np.ndarray) -> np.ndarray:  # X @ dense
        out = np.empty((n_rows, dense.shape[1]))
        train_cpu.sparse_dot(indptr, indices, values, np.ascontiguousarray(dense), out)
        return out

    def t_times(dense: np.ndarray) -> np.ndarray:  # X.T @ dense
        out = np.empty((n_cols, dense.shape[1]))
        train_cpu.sparse_dot(t_indptr, t_indices, t_values, np.ascontiguousarray(dense), out)
        return out

    # start from random texts rather than random words: fewer random numbers, same subspace
    # uniform rather than Gaussian entries: any mean-zero random start spans the range as well, and
    # drawing them costs a fifth
    q = _orthonormal(times(t_times(rng.random((n_rows, width)) - 0.5)))
    for _ in range(iterations):  # normalising the text side alone is enough for a few iterations
        q = _orthonormal(times(t_times(q)))
    b_t = t_times(q).astype(np.float32)  # X.T @ Q = B.T, with X ~ Q @ B; the result is kept as float32
    eigenvalues, vectors = np.linalg.eigh((b_t.T @ b_t).astype(np.float64))
    order = np.argsort(-eigenvalues)[: min(dims, width)]
    order = order[eigenvalues[order] > 1e-6 * max(float(eigenvalues.max()), 1e-300)]  # drop null directions
    singular = np.sqrt(eigenvalues[order])
    return np.ascontiguousarray((b_t @ vectors[:, order].astype(np.float32)) / singular, dtype=np.float64)


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


# texts that Lloyd iterations see when the number of topics is given: 40 per topic, and at least
# 2,000 (a few broad topics need more texts to settle than many narrow ones)
LLOYD_PER_TOPIC = 40
LLOYD_MIN_TEXTS = 2_000


def _seed_centres(z: np.ndarray, k: int, rng, per_seed: int = 30) -> np.ndarray:
    """k-means++ seeding with cosine distance, over a random `per_seed * k` of the texts: the seeds
    only need to cover the space, and Lloyd iterations over all texts do the rest."""
    pool = z if z.shape[0] <= per_seed * k else z[rng.choice(z.shape[0], per_seed * k, replace=False)]
    return pool[topics_cpu.kmeans_plus_plus(pool, k, rng.random(k))].copy()


def _nearest(z: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine) of the nearest of the unit `centres` for each unit row of z (the assignment
    kernel with no thresholds: the same sums as assign, on both cores)."""
    labels = np.empty(z.shape[0], dtype=np.int32)
    scores = np.empty(z.shape[0])
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    topics_cpu.assign_embedded(z, centres, np.full(centres.shape[0], -np.inf), labels, scores)
    return labels.astype(np.int64), scores


def _spherical_kmeans(z: np.ndarray, centres: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations on the sphere, until at most 1 text in 1000 changes cluster; an emptied
    cluster keeps its centre. Returns (centres, labels)."""
    labels = np.full(z.shape[0], -1, dtype=np.int64)
    centres = centres.astype(z.dtype, copy=False)
    for _ in range(iterations):
        new = (z @ centres.T).argmax(axis=1)
        if np.count_nonzero(new != labels) <= z.shape[0] // 1000:
            break
        labels = new
        sums = topics_cpu.centre_sums(z, labels, centres.shape[0])
        filled = np.linalg.norm(sums, axis=1) > 0
        centres = np.where(filled[:, None], _normalise(sums), centres).astype(z.dtype)
    return centres, (z @ centres.T).argmax(axis=1)


def _neighbour_graph(z: np.ndarray, micro: np.ndarray, n_micro: int, k: int) -> np.ndarray:
    """Micro-cluster graph: edge weight = summed cosine of mutual k-nearest-neighbour pairs across them.

    Only mutual pairs count: a text on the edge of a topic often has its nearest neighbours in
    the next topic, but is rarely theirs, so mutual pairs tie topics together far less by chance.
    """
    n = z.shape[0]
    k = min(k, n - 1)
    weights = np.zeros((n_micro, n_micro))
    if k < 1:
        return weights
    nearest = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k))
    for start in range(0, n, 2048):
        nearest[start : start + 2048], sims[start : start + 2048] = topics_cpu.nearest_neighbours(
            z[start : start + 2048] @ z.T, start, k
        )
    topics_cpu.mutual_weights(nearest, sims, micro, weights)
    return weights


def _cluster(z: np.ndarray, n_topics: int | str, s: FitSettings, rng) -> np.ndarray:
    """Unit centres of the topics of the embedded sample."""
    n = z.shape[0]
    if n_topics != "auto":
        k = min(int(n_topics), n)
        centres = _seed_centres(z, k, rng)
        # a centre is a mean: a few dozen texts per topic place it as well as all of them, and the
        # assignment that follows places every text
        lloyd = max(LLOYD_PER_TOPIC * k, LLOYD_MIN_TEXTS)
        if n > lloyd:
            z = z[np.sort(rng.choice(n, lloyd, replace=False))]
        return _spherical_kmeans(z, centres, s.kmeans_iterations)[0]
    n_micro = max(1, min(n // s.micro_size, s.max_micro))
    # micro-clusters only need to be small and tight: random distinct texts seed them
    seeds = z[rng.choice(n, n_micro, replace=False)]
    micro = _spherical_kmeans(z, seeds, s.kmeans_iterations)[1]
    graph_rows = rng.permutation(n)[: s.graph_sample] if n > s.graph_sample else np.arange(n)
    weights = _neighbour_graph(z[graph_rows], micro[graph_rows], n_micro, s.neighbours)
    group = topics_cpu.merge_communities(weights, s.resolution)
    sums = topics_cpu.centre_sums(z, group[micro], int(group.max()) + 1)
    sums = sums[np.linalg.norm(sums, axis=1) > 0]
    return _spherical_kmeans(z, _normalise(sums), s.kmeans_iterations)[0]


def _fresh_centres(z: np.ndarray, previous_rows: np.ndarray, n_topics: int | str, s: FitSettings, rng) -> np.ndarray:
    """Candidate new topics of a refit: the topics of the texts the previous model places nowhere,
    clustered among others it places (up to `graph_sample` texts in all), so that one new theme is
    seen beside known ones rather than alone, where the clustering would cut it in two. A sample of
    up to `graph_sample` texts is clustered whole, as every refit's was before.

    `_continue_previous` keeps only a candidate most of whose nearest texts the previous model leaves
    out, so the candidates need not cover the known topics. Clustering all of a refit's sampled texts
    instead made the refit 1.3-1.4 times as long on the 10,500 texts of bench/topics.py `new_themes`,
    1.5-1.8 on windows of 20,000 Banking77 and CLINC150 texts, for about as many new themes' texts
    found."""
    unplaced = np.flatnonzero(previous_rows < 0)
    if not unplaced.size:  # no candidate could pass: it needs most of its texts unplaced
        return np.zeros((0, z.shape[1]), dtype=z.dtype)
    others = np.flatnonzero(previous_rows >= 0)
    room = max(s.graph_sample - unplaced.size, 0)
    if others.size > room:
        others = rng.choice(others, room, replace=False)
    rows = np.sort(np.concatenate([unplaced, others]))
    return _cluster(np.ascontiguousarray(z[rows]), n_topics, s, rng)


def _continue_previous(z: np.ndarray, centres: np.ndarray, previous_rows: np.ndarray, s: FitSettings) -> np.ndarray:
    """Centres for a refit: the previous topics' texts give their centres in the new space, and a
    freshly found topic is added only when the previous model places most of its texts nowhere.

    Starting from the previous partition is what keeps ids stable: a refit of the same kind of
    data converges to nearly the same topics instead of a different but equally good clustering.
    """
    n_previous = int(previous_rows.max()) + 1 if previous_rows.size else 0
    sums = topics_cpu.centre_sums(z, previous_rows, n_previous)
    seeds = [_normalise(sums[np.linalg.norm(sums, axis=1) > 0])]
    fresh = (z @ centres.T).argmax(axis=1) if centres.size else np.zeros(0, dtype=np.int64)
    for row in range(centres.shape[0]):
        members = previous_rows[fresh == row]
        if members.size == 0:
            continue
        if np.mean(members < 0) >= 0.5:
            seeds.append(centres[row : row + 1])
    return _spherical_kmeans(z, np.vstack(seeds), s.refit_iterations)[0]


def fit(
    texts: Texts,
    n_topics: int | str = "auto",
    *,
    settings: FitSettings | None = None,
    previous: TopicModel | None = None,
    stop_languages: Sequence[str] = STOP_LANGUAGES,
) -> TopicModel:
    """Fit a topic model on `texts` ("auto" chooses the number of topics; an int fixes it).

    With `previous`, topics that match its topics keep their ids, labels and curation (see align).
    """
    return fit_assign(texts, n_topics, settings=settings, previous=previous, stop_languages=stop_languages)[0]


def fit_assign(
    texts: Texts,
    n_topics: int | str = "auto",
    *,
    settings: FitSettings | None = None,
    previous: TopicModel | None = None,
    stop_languages: Sequence[str] = STOP_LANGUAGES,
) -> tuple[TopicModel, pa.Table]:
    """fit() plus the assignment of the same texts (computed anyway for sizes and examples)."""
    s = settings or FitSettings()
    if n_topics != "auto" and (not isinstance(n_topics, int) or n_topics < 1):
        raise ValueError(f"n_topics must be 'auto' or a positive integer, got {n_topics!r}")
    rng = np.random.default_rng(s.seed)
    array = as_string_array(texts)
    n = len(array)
    hashes = previous.stop_hashes if previous is not None else stop_hashes(stop_languages)
    offsets, data = utf8_buffers(array)
    starts, codes = topics_cpu.content_codes(offsets, data, s.bits, hashes)
    sample = np.sort(rng.choice(n, s.sample, replace=False)) if n > s.sample else np.arange(n)
    s_starts, s_codes = _take_rows(starts, codes, sample)
    vocab, idf = _vocabulary(s_starts, s_codes, s.bits, s.max_terms)
    table = np.full(2 << s.bits, -1, dtype=np.int32)
    table[vocab] = np.arange(vocab.size, dtype=np.int32)
    indptr, indices, values = topics_cpu.tfidf_csr(s_starts, s_codes, table, idf)
    if indices.size and sample.size > 1:
        # the leading directions of the vocabulary are estimated well from a few thousand texts
        rows = np.sort(rng.choice(sample.size, s.svd_sample, replace=False)) if sample.size > s.svd_sample else None
        svd_rows = (indptr, indices, values) if rows is None else _take_csr(indptr, indices, values, rows)
        # stored as float32: rounded now so that a saved model assigns exactly as the fitted one
        projection = _randomized_svd(*svd_rows, vocab.size, s.dims, s.iterations_for(n_topics), rng)
        projection = projection.astype(np.float32).astype(np.float64)
    else:  # nothing to reduce: one dimension, on which every text with a known word is alike
        projection = np.ones((vocab.size, 1))
    z = np.zeros((sample.size, projection.shape[1]))
    topics_cpu.embed(s_starts, s_codes, table, idf, projection, z)
    placed = np.linalg.norm(z, axis=1) > 0
    z_placed = z if placed.all() else np.ascontiguousarray(z[placed])
    z32 = z_placed.astype(np.float32)  # single precision halves the dense products' time
    centres = np.zeros((0, projection.shape[1]))
    previous_rows = None
    if previous is None:
        if placed.any():
            centres = _cluster(z32, n_topics, s, rng)
    else:
        # where the previous model places every text, once: its sample seeds the refit, all of it
        # aligns the ids (a refit cuts the texts with the previous stop words, so with as many bits
        # the codes are the previous model's own)
        same_codes = previous.bits == s.bits
        previous_rows = (previous.assign_codes(starts, codes) if same_codes else previous.assign_rows(array))[0]
        if placed.any():
            sample_rows = previous_rows[sample[placed]]
            centres = _continue_previous(z32, _fresh_centres(z32, sample_rows, n_topics, s, rng), sample_rows, s)
    centres = np.ascontiguousarray(_normalise(centres.astype(np.float64)))

    # every text is embedded already when the sample is all of them: one pass of the assignment
    # kernel, without thresholds, gives both the thresholds and the assignment itself
    every = sample.size == n
    best, own = _nearest(z if every else z_placed, centres)
    thresholds = _thresholds(
        best[placed] if every else best, own[placed] if every else own, centres.shape[0], s.outlier_quantile
    )
    model = TopicModel(
        bits=s.bits,
        stop_hashes=hashes,
        vocab_codes=vocab,
        idf=idf,
        projection=projection,
        centres=np.ascontiguousarray(centres),
        thresholds=thresholds,
        row_ids=np.arange(centres.shape[0], dtype=np.int64),
        topics={},
        info={"fitted_at": _now(), "n_texts": n, "requested": str(n_topics), "settings": s.to_dict()},
    )
    if every:  # what assign() gives: below its topic's threshold, a text is placed nowhere
        rows = np.where((best >= 0) & (own < thresholds[np.maximum(best, 0)]), -1, best).astype(np.int32)
        row_scores = own
    else:
        rows = np.empty(n, dtype=np.int32)
        row_scores = np.empty(n, dtype=np.float64)
        topics_cpu.assign(starts, codes, table, idf, projection, model.centres, thresholds, rows, row_scores)
    _drop_empty_rows(model, rows)
    per_topic = max(25, min(s.label_sample, s.label_texts // max(centres.shape[0], 1)))
    _name_topics(model, array, rows, row_scores, per_topic)
    if previous is not None:
        align(model, previous, array, rows, previous_rows)
    else:
        _number_by_size(model, rows)
    return model, model.table_of_rows(rows, row_scores)


def _thresholds(best: np.ndarray, own: np.ndarray, k: int, quantile: float) -> np.ndarray:
    """Per topic, the cosine below which a text is too far from it: the `quantile` of its own
    members' cosines (`best`: each text's nearest of the k topics, `own`: its cosine to it; the
    lower value, so a small topic keeps all its members); 1.0 for a topic that has none."""
    thresholds = np.ones(k)
    if not best.size or not k:
        return thresholds
    order = np.lexsort((own, best))  # by topic, then by cosine
    counts = np.bincount(best, minlength=k)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    position = starts[has] + np.floor(quantile * (counts[has] - 1)).astype(np.int64)
    thresholds[has] = np.maximum(own[order[position]] - 1e-9, 0.0)
    return thresholds


def _take_rows(starts: np.ndarray, codes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if rows.size == starts.size - 1:
        return starts, codes
    new_starts, picks = _row_ranges(starts, rows)
    return new_starts, codes[picks]


def _take_csr(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    new_indptr, picks = _row_ranges(indptr, rows)
    return new_indptr, indices[picks], values[picks]


def _row_ranges(starts: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(new starts, positions to take) selecting `rows` of a CSR-like layout."""
    lengths = starts[rows + 1] - starts[rows]
    new_starts = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_starts[1:])
    picks = np.arange(int(new_starts[-1]), dtype=np.int64) - np.repeat(new_starts[:-1] - starts[rows], lengths)
    return new_starts, picks


def _drop_empty_rows(model: TopicModel, rows: np.ndarray) -> None:
    """Topics no text lands on (all members below the threshold) are not topics; renumber rows in place."""
    counts = np.bincount(rows[rows >= 0], minlength=model.centres.shape[0])
    keep = np.flatnonzero(counts > 0)
    renumber = np.full(model.centres.shape[0] + 1, -1, dtype=np.int32)
    renumber[keep] = np.arange(keep.size, dtype=np.int32)
    rows[:] = renumber[rows]
    model.centres = np.ascontiguousarray(model.centres[keep])
    model.thresholds = model.thresholds[keep]
    model.row_ids = np.arange(keep.size, dtype=np.int64)


def _number_by_size(model: TopicModel, rows: np.ndarray) -> None:
    """First fit: ids 0.. from the largest topic down."""
    counts = np.bincount(rows[rows >= 0], minlength=model.centres.shape[0])
    order = np.argsort(-counts, kind="stable")
    new_ids = np.empty_like(model.row_ids)
    new_ids[order] = np.arange(order.size)
    topics = {}
    for row, topic_id in enumerate(new_ids):
        topic = model.topics[int(model.row_ids[row])]
        topic.id = int(topic_id)
        topics[int(topic_id)] = topic
    model.row_ids = new_ids
    model.topics = dict(sorted(topics.items()))
    model.info["next_id"] = int(order.size)
    model.info["history"] = []


def _name_topics(model: TopicModel, texts: pa.Array, rows: np.ndarray, scores: np.ndarray, per_topic: int) -> None:
    """Label, keywords and examples of each row, from its texts nearest the centre, redacted first:
    neither an example nor a keyword ever holds an e-mail address or a phone number."""
    from conv_analytics.text.redact import redact_texts

    k = model.centres.shape[0]
    nearest: list[np.ndarray] = []
    for row in range(k):
        members = np.flatnonzero(rows == row)
        nearest.append(members[np.argsort(-scores[members], kind="stable")[:per_topic]])
    flat = np.concatenate(nearest) if nearest else np.zeros(0, dtype=np.int64)
    redacted = redact_texts(texts.take(pa.array(flat, type=pa.int64())))[0].to_pylist()
    bounds = np.cumsum([0, *(group.size for group in nearest)])
    samples = [[t or "" for t in redacted[bounds[row] : bounds[row + 1]]] for row in range(k)]
    keywords = _class_keywords(samples, top=LABEL_CANDIDATES)  # the label weighs more than it shows
    counts = np.bincount(rows[rows >= 0], minlength=k)
    for row in range(k):
        examples = _distinct(samples[row], 3)
        # a topic without words (emoji, numbers) is named by its most central text
        label = _label(keywords[row]) or (examples[0][:40] if examples else OTHER)
        model.topics[row] = Topic(row, label, int(counts[row]), keywords[row][:KEYWORDS], examples)


def _distinct(values: list[str], limit: int) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
        if len(seen) == limit:
            break
    return seen


def _lemmatiser(sample: list[str]) -> dict[str, str]:
    """The lemma table of the sample's language (spaCy lookups; empty where it has none)."""
    from conv_analytics.text.enrich import LEMMA_LANGUAGES, chunk_tokenizer
    from conv_analytics.text.language import detect_language

    lang = detect_language(" ".join(sample[:5])[:200])
    return chunk_tokenizer(lang).table if lang in LEMMA_LANGUAGES else {}


def _class_keywords(samples: list[list[str]], top: int = 10) -> list[list[tuple[str, float]]]:
    """Per group of texts, its most distinctive lemma unigrams and bigrams (stop words and numbers
    out) with their weights: coverage x log lift, by document frequency.

    Coverage is the share of the group's texts that use a term; lift compares it with the share of
    the other groups' texts that use it (both smoothed by COVERAGE_SMOOTHING). A term most of the
    group's texts share and the rest use much less wins; a name that a few texts repeat covers
    little and loses, and a chat filler that every group uses ("need", "thank") has no lift.
    A term must be used by at least two texts of the group.

    Words are runs of letters looked up in the lemma table of each group's language: a dictionary
    lookup per word and a few array operations per group, so naming topics costs little next to
    fitting them.
    """
    stops = stop_word_set()
    names: list[str] = [_TEXT_END]  # word id -> word; 0 separates texts
    ids: dict[str, int] = {_TEXT_END: 0}
    # form -> word id, or -1 when left out (stop word, one letter); one map per lemma table, as the
    # same words recur across topics
    ids_by_table: dict[int, dict[str, int]] = {}
    codes_of: list[np.ndarray] = []  # per group, its terms where they occur (word << 32 | next word, 0 for a unigram)
    texts_of: list[np.ndarray] = []  # and the text (numbered across groups) each occurrence is in
    sizes = np.array([len(sample) for sample in samples], dtype=np.int64)
    first_text = np.cumsum(sizes) - sizes
    for g, sample in enumerate(samples):
        table = _lemmatiser(sample) if sample else {}
        ids_of = ids_by_table.setdefault(id(table) if table else 0, {_TEXT_END: 0})
        # the group's texts read in one pass, a separator between them so no bigram spans two
        joined = _TEXT_END.join(sample)
        if joined.count(_TEXT_END) != max(len(sample) - 1, 0):  # a text holds the separator itself
            joined = _TEXT_END.join(text.replace(_TEXT_END, " ") for text in sample)
        forms = _TOKENS.findall(_PLACEHOLDERS.sub(" ", joined).lower())
        for form in sorted(set(forms).difference(ids_of)):  # sorted: word ids, and so ties, the same every run
            word = table.get(form, form)
            if form in (word + "er", word + "r"):  # the tables read "number" as a comparative of "numb"
                word = form
            if word in stops or len(word) < 2:
                ids_of[form] = -1
            else:
                ids_of[form] = ids.setdefault(word, len(names))
                if ids_of[form] == len(names):
                    names.append(word)
        seq = np.fromiter(map(ids_of.__getitem__, forms), dtype=np.int64, count=len(forms))
        seq = seq[seq >= 0]
        text = np.cumsum(seq == 0) + first_text[g]
        word = seq > 0
        pair = word[:-1] & word[1:]
        codes_of.append(np.concatenate([seq[word] << 32, (seq[:-1][pair] << 32) | seq[1:][pair]]))
        texts_of.append(np.concatenate([text[word], text[:-1][pair]]))
    if not codes_of:
        return []
    # how many texts of each group use each term: the distinct (term, text) pairs, counted per group
    n_texts = max(int(sizes.sum()), 1)
    distinct, term = np.unique(np.concatenate(codes_of), return_inverse=True)
    pairs = np.unique(term.astype(np.int64) * n_texts + np.concatenate(texts_of))
    group_of_text = np.repeat(np.arange(len(samples), dtype=np.int64), sizes)
    keys, used = np.unique(group_of_text[pairs % n_texts] * distinct.size + pairs // n_texts, return_counts=True)
    group, term = keys // max(distinct.size, 1), keys % max(distinct.size, 1)
    total = np.bincount(term, weights=used, minlength=distinct.size)
    coverage = used / np.maximum(sizes[group], 1)
    rest = (total[term] - used) / np.maximum(n_texts - sizes[group], 1)
    weights = coverage * np.log((coverage + COVERAGE_SMOOTHING) / (rest + COVERAGE_SMOOTHING))
    weights[(used < 2) | (weights <= 0)] = 0.0
    bigram = (distinct[term] & 0xFFFFFFFF) > 0
    order = np.lexsort((distinct[term], bigram, -weights, group))  # by group, heaviest first, unigrams first
    starts = np.searchsorted(group[order], np.arange(len(samples) + 1))
    out = []
    for g in range(len(samples)):
        best = [i for i in order[starts[g] : min(starts[g] + top, starts[g + 1])] if weights[i] > 0]
        out.append([(_term_name(int(distinct[term[i]]), names), round(float(weights[i]), 6)) for i in best])
    return out


COVERAGE_SMOOTHING = 0.02  # added to both shares before their ratio: a term of a tenth of a topic's
# texts that no other topic uses lifts it about 6x, not infinitely


def _term_name(code: int, names: list[str]) -> str:
    second = code & 0xFFFFFFFF
    return names[code >> 32] if not second else f"{names[code >> 32]} {names[second]}"


def _label(keywords: list[tuple[str, float]], parts: int = 3) -> str:
    """Up to three distinctive terms in weight order that share no word, so that a label says each
    thing once ("taxi · contact", not "taxi · book taxi"). A bigram of two keywords replaces the
    shown unigrams of its own when it weighs at least two thirds as much ("free", "wifi" become
    "free wifi"); one with a word that is no keyword itself ("need train") never does."""
    chosen: list[str] = []
    weight_of = dict(keywords)
    for term, weight in keywords:
        words = term.split()
        overlap = [c for c in chosen if set(c.split()) & set(words)]
        if not overlap:
            if len(chosen) < parts:
                chosen.append(term)
            continue
        if (
            len(words) == 2
            and all(w in weight_of for w in words)
            and all(" " not in c and 3 * weight >= 2 * weight_of[c] for c in overlap)
        ):
            at = chosen.index(overlap[0])
            chosen = [c for c in chosen if c not in overlap]
            chosen.insert(at, term)
    return " · ".join(chosen[:parts])


# --- stable ids across refits --------------------------------------------------------------------


def align(
    model: TopicModel,
    previous: TopicModel,
    texts: Texts,
    rows: np.ndarray | None = None,
    previous_rows: np.ndarray | None = None,
    min_share: float = 0.3,
) -> None:
    """Give `model`'s topics the ids of the `previous` topics they continue, in place.

    Both models assign the same texts. A new topic and an earlier one match when each is the
    other's largest overlap and the overlap is at least `min_share` of the new topic: the topic
    keeps the earlier id, label and curation. Other new topics get new ids; one drawn mostly from
    an earlier topic that continues elsewhere is recorded as split from it, and an earlier topic
    whose texts mostly went to a matched topic is recorded as merged into it (its id an alias).
    `rows` and `previous_rows` are the two models' rows for the texts when already computed.
    """
    new_rows = model.assign_rows(texts, "cpu")[0] if rows is None else rows
    old_rows = previous.assign_rows(texts, "cpu")[0] if previous_rows is None else previous_rows
    old_ids = previous.ids_of_rows(old_rows, curated=False)
    k = model.centres.shape[0]
    both = (new_rows >= 0) & (old_ids >= 0)
    old_list = sorted(previous.topics)
    # texts per (new row, previous topic); every row of the previous model is one of its topics
    columns = np.searchsorted(old_list, old_ids[both])
    cells = new_rows[both].astype(np.int64) * len(old_list) + columns
    overlap = np.bincount(cells, minlength=k * len(old_list)).reshape(k, len(old_list))
    sizes = np.bincount(new_rows[new_rows >= 0], minlength=k)
    next_id = int(previous.info.get("next_id", max(previous.topics, default=-1) + 1))
    history = list(previous.info.get("history", []))
    event: dict = {"at": _now(), "kept": [], "new": [], "splits": [], "merges": []}
    new_ids = np.full(k, -1, dtype=np.int64)
    matched_old: dict[int, int] = {}
    for row in range(k):
        if not overlap.shape[1] or overlap[row].max() == 0:
            continue
        j = int(overlap[row].argmax())
        if int(overlap[:, j].argmax()) == row and overlap[row, j] >= min_share * max(sizes[row], 1):
            new_ids[row] = old_list[j]
            matched_old[j] = row
    topics: dict[int, Topic] = {}
    for row in range(k):
        topic = model.topics[row]
        if new_ids[row] >= 0:
            old = previous.topics[int(new_ids[row])]
            topic.label = old.label
            topic.aliases = list(old.aliases)
            event["kept"].append(int(new_ids[row]))
        else:
            new_ids[row] = next_id
            next_id += 1
            event["new"].append(int(new_ids[row]))
            if overlap.shape[1] and overlap[row].max() >= 0.5 * max(sizes[row], 1):
                j = int(overlap[row].argmax())
                if j in matched_old:
                    event["splits"].append({"id": int(new_ids[row]), "from": old_list[j]})
        topic.id = int(new_ids[row])
        topics[topic.id] = topic
    for j, old_id in enumerate(old_list):
        if j in matched_old or not overlap.shape[1] or overlap[:, j].sum() == 0:
            continue
        row = int(overlap[:, j].argmax())
        if overlap[row, j] >= 0.5 * overlap[:, j].sum() and row in matched_old.values():
            into = int(new_ids[row])
            event["merges"].append({"id": old_id, "into": into})
            if old_id not in topics[into].aliases:
                topics[into].aliases.append(old_id)
    model.row_ids = new_ids
    model.topics = dict(sorted(topics.items()))
    # curation carries over for the ids that continue, while the id it shows them as still exists
    model.curation = {i: t for i, t in previous.curation.items() if i in topics and (t < 0 or t in topics)}
    model.info["next_id"] = next_id
    model.info["history"] = [*history, event]
