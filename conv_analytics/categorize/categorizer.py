"""The categorisation engine the assets and the CLI use: topic, intent and sentiment per text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from conv_analytics.text.arrow import as_string_array

from .device import Device, resolve_device
from .features import Texts
from .models import MODEL_FILE, FusedModel, LinearModel
from .sentiment import LABELS, NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD, sentiment_labels, vader_compound
from .training import TASKS, fit_linear, fit_taxonomy, load_taxonomy

if TYPE_CHECKING:
    from conv_analytics.translate import MessageTranslator

SENTIMENT_FILE = "thresholds.json"

OUTPUT_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("topic_confidence", pa.float64()),
        ("intent", pa.string()),
        ("intent_confidence", pa.float64()),
        ("sentiment", pa.string()),
        ("sentiment_score", pa.float64()),
    ]
)


class Categorizer:
    """Topic and intent from linear models over hashed features, sentiment from VADER compound scores."""

    def __init__(
        self,
        topic: LinearModel,
        intent: LinearModel,
        device: Device = "cpu",
        sentiment_thresholds: tuple[float, float] = (NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD),
    ) -> None:
        self.topic = topic
        self.intent = intent
        self.device = device
        self.sentiment_thresholds = sentiment_thresholds
        # topic and intent in one pass over the text when their features agree
        self.fused = FusedModel([topic, intent]) if topic.spec == intent.spec else None

    @classmethod
    def load(
        cls, path: str | Path | None = None, device: str | None = None, taxonomy_path: str | Path | None = None
    ) -> Categorizer:
        """Models saved under `path` (topic/, intent/, sentiment/); any missing one is the default
        built from the taxonomy YAML at `taxonomy_path` (else the shipped one)."""
        resolved = resolve_device(device)
        folder = Path(path) if path else None
        if folder is not None and not folder.is_dir():
            raise ValueError(f"model folder {folder} does not exist")
        models: dict[str, LinearModel] = {}
        taxonomy = None
        for task in TASKS:
            if folder is not None and (folder / task / MODEL_FILE).is_file():
                models[task] = LinearModel.load(folder / task)
            else:
                taxonomy = taxonomy or load_taxonomy(taxonomy_path)
                models[task] = fit_taxonomy(taxonomy, task)
        thresholds = (NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD)
        if folder is not None and (folder / "sentiment" / SENTIMENT_FILE).is_file():
            saved = json.loads((folder / "sentiment" / SENTIMENT_FILE).read_text())
            thresholds = (float(saved["negative_below"]), float(saved["positive_above"]))
        return cls(models["topic"], models["intent"], resolved, thresholds)

    @staticmethod
    def train(task: str, texts: Texts, labels: Sequence[str], **options) -> LinearModel | SentimentThresholds:
        """Fit one task's model from labelled texts; `.save(dir)` it and `load(dir)` picks it up.

        topic/intent: options go to training.fit_linear (c, spec, max_iter, min_df, fallback,
        threshold). sentiment: fits only the two cut-offs on the VADER compound score.
        """
        if task == "sentiment":
            return SentimentThresholds.fit(texts, labels)
        if task not in TASKS:
            raise ValueError(f"task must be one of topic, intent, sentiment; got {task!r}")
        return fit_linear(texts, labels, task=task, **options)

    def predict_topic(self, texts: Texts) -> tuple[pa.Array, np.ndarray]:
        return self.topic.predict(texts, self.device)

    def predict_intent(self, texts: Texts) -> tuple[pa.Array, np.ndarray]:
        return self.intent.predict(texts, self.device)

    def predict_sentiment(self, texts: Texts) -> tuple[pa.Array, np.ndarray]:
        """(negative|neutral|positive, VADER compound score in -1..1)."""
        scores = np.asarray(vader_compound(texts, device=self.device), dtype=np.float64)
        return sentiment_labels(scores, self.sentiment_thresholds), scores

    def sentiment_labels(self, scores: np.ndarray) -> pa.Array:
        """Labels for compound scores (a conversation's mean, say) with this categoriser's thresholds."""
        return sentiment_labels(scores, self.sentiment_thresholds)

    def predict(self, texts: Texts, translator: MessageTranslator | None = None) -> pa.Table:
        """One row per text, in order, with all three labels and their scores.

        With a translator (conv_analytics.translate.make_translator), each text's language is
        detected and a text with a translation is labelled on its English: the labels are
        English-only (VADER's lexicon, the taxonomy's examples).
        """
        if translator is not None:
            from conv_analytics.translate import in_english

            texts = in_english(as_string_array(texts).to_pylist(), translator)
        texts = as_string_array(texts)  # once: a cast or copy here would otherwise happen per kernel
        if self.fused is None:
            topic, topic_conf = self.predict_topic(texts)
            intent, intent_conf = self.predict_intent(texts)
            score = vader_compound(texts, self.device)
        else:
            best, confidence, score = self._fused_and_sentiment(texts)
            topic, topic_conf = self.topic.decode(best[:, 0]), confidence[:, 0]
            intent, intent_conf = self.intent.decode(best[:, 1]), confidence[:, 1]
        sentiment = self.sentiment_labels(score)
        return pa.Table.from_arrays(
            [topic, pa.array(topic_conf), intent, pa.array(intent_conf), sentiment, pa.array(score)],
            schema=OUTPUT_SCHEMA,
        )

    def _fused_and_sentiment(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(best classes, confidence, compound score): on the CPU, word features only, in one pass over
        each text, the sentiment kernel splitting it for the fused models too (exactly their own
        kernel's result, and faster: the bytes are read once); otherwise a kernel each."""
        linear = self.fused.cpu_scoring(len(texts)) if self.device == "cpu" else None
        if linear is None:
            best, confidence = self.fused.predict_indices(texts, self.device)
            return best, confidence, vader_compound(texts, self.device)
        score = vader_compound(texts, self.device, linear)
        best, confidence = linear[-2:]
        return self.fused.abstain(best, confidence), confidence, score


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over the classes present in truth or predictions, on integer labels."""
    tp = np.bincount(truth[truth == predicted], minlength=n_classes)
    true_count = np.bincount(truth, minlength=n_classes)
    pred_count = np.bincount(predicted, minlength=n_classes)
    present = (true_count + pred_count) > 0
    return float(np.mean(2 * tp[present] / (true_count[present] + pred_count[present])))


class SentimentThresholds:
    """What training sentiment means here: the VADER scores stay, only the two cut-offs are fitted
    (grid search for the best macro-F1 on the labelled texts)."""

    task = "sentiment"

    def __init__(self, negative_below: float, positive_above: float, info: dict | None = None) -> None:
        self.negative_below = negative_below
        self.positive_above = positive_above
        self.info = info or {}

    @classmethod
    def fit(cls, texts: Texts, labels: Sequence[str]) -> SentimentThresholds:
        from .sentiment import vader_compound

        unknown = set(labels) - set(LABELS)
        if unknown:
            raise ValueError(f"sentiment labels must be {LABELS}; found {sorted(unknown)[:5]}")
        truth = np.array([LABELS.index(label) for label in labels], dtype=np.int64)
        scores = np.asarray(vader_compound(texts), dtype=np.float64)
        grid = np.round(np.arange(0.0, 0.801, 0.025), 3)
        best = (-1.0, NEGATIVE_THRESHOLD, POSITIVE_THRESHOLD)
        for neg in grid:
            for pos in grid:
                predicted = np.where(scores >= pos, 2, np.where(scores <= -neg, 0, 1))
                f1 = _macro_f1(truth, predicted, len(LABELS))
                if f1 > best[0] + 1e-12:
                    best = (f1, -float(neg), float(pos))
        return cls(best[1], best[2], {"train_macro_f1": best[0], "n_train": len(labels)})

    def predict(self, texts: Texts, device: Device = "cpu") -> tuple[pa.Array, np.ndarray]:
        from .sentiment import vader_compound

        scores = np.asarray(vader_compound(texts, device=device), dtype=np.float64)
        return sentiment_labels(scores, (self.negative_below, self.positive_above)), scores

    def save(self, directory: str | Path) -> Path:
        out = Path(directory) / self.task
        out.mkdir(parents=True, exist_ok=True)
        payload = {"negative_below": self.negative_below, "positive_above": self.positive_above, "info": self.info}
        (out / SENTIMENT_FILE).write_text(json.dumps(payload, indent=2) + "\n")
        return out
