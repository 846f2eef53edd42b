"""Which label the rollups use: the taxonomy's where its model is confident, else the discovered one.

The taxonomy's models answer their fallback label (`other`) when no label is confident; discovered
topics and intents answer -1 / `other` for a text far from every topic, or nothing before the first
model exists. `source` is the topic-source setting: auto, taxonomy or discovered.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

OTHER = "other"
SOURCES = ("auto", "taxonomy", "discovered")


def effective_labels(
    taxonomy: pa.Array,
    taxonomy_confidence: np.ndarray,
    discovered: pa.Array,
    discovered_score: np.ndarray,
    source: str,
) -> tuple[pa.Array, np.ndarray]:
    """(label, confidence) per text. `discovered` may hold nulls (no model yet): the taxonomy's then."""
    if source not in SOURCES:
        raise ValueError(f"topic source must be one of {', '.join(SOURCES)}, not {source!r}")
    if source == "taxonomy":
        return taxonomy, taxonomy_confidence
    placed = pc.fill_null(pc.not_equal(discovered, OTHER), False)
    if source == "auto":  # discovered only where the taxonomy is not confident
        placed = pc.and_(placed, pc.equal(taxonomy, OTHER))
        otherwise, otherwise_confidence = taxonomy, np.asarray(taxonomy_confidence, dtype=np.float64)
    else:  # discovered: no model yet, or far from every topic, is other
        otherwise = pa.array([OTHER] * len(taxonomy), pa.string())
        otherwise_confidence = np.zeros(len(taxonomy), dtype=np.float64)
    mask = placed.to_numpy(zero_copy_only=False).astype(bool)
    labels = pc.if_else(placed, discovered.cast(pa.string()), otherwise)
    confidence = np.where(mask, np.nan_to_num(np.asarray(discovered_score, dtype=np.float64)), otherwise_confidence)
    return labels, confidence
