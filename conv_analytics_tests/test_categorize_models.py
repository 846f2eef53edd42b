"""Topic/intent categorisation: default labels, edge-case texts, training, save/load, taxonomy override."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from conv_analytics.categorize import Categorizer
from conv_analytics.categorize.features import FeatureSpec, hashed_codes
from conv_analytics.categorize.models import LinearModel
from conv_analytics.categorize.resource import CategorizerResource
from conv_analytics.categorize.training import (
    accuracy_and_macro_f1,
    fit_taxonomy,
    holdout_split,
    load_taxonomy,
)
from conv_analytics.config import Config
from conv_analytics.resources import configured


@pytest.fixture(scope="module")
def defaults() -> tuple[LinearModel, LinearModel]:
    taxonomy = load_taxonomy()
    return fit_taxonomy(taxonomy, "topic"), fit_taxonomy(taxonomy, "intent")


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("where is my order? it has not arrived", "order_status"),
        ("I was charged twice on my credit card", "billing"),
        ("I forgot my password and cannot log in", "account"),
        ("I want a refund, please", "refund"),
        ("the app keeps crashing after the update", "technical_issue"),
        ("la aplicación no funciona", "technical_issue"),
        ("ich habe mein Passwort vergessen", "account"),
        ("je voudrais être remboursé", "refund"),
        ("how much does shipping to Spain cost?", "delivery"),
    ],
)
def test_default_topics(defaults, text: str, topic: str) -> None:
    labels, confidence = defaults[0].predict([text])
    assert labels.to_pylist() == [topic]
    assert 0.4 <= confidence[0] <= 1.0


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hello there", "greeting"),
        ("thank you so much!", "thanks"),
        ("can I talk to a real person please", "ask_for_human"),
        ("this is unacceptable, I have waited for weeks", "complaint"),
        ("I want to cancel my order", "cancel"),
        ("yes please", "affirm"),
        ("when will my order arrive?", "question"),
        ("merci beaucoup", "thanks"),
    ],
)
def test_default_intents(defaults, text: str, intent: str) -> None:
    labels, _ = defaults[1].predict([text])
    assert labels.to_pylist() == [intent]


def test_edge_case_texts_never_crash_and_abstain(defaults) -> None:
    invalid = pa.Array.from_buffers(
        pa.string(),
        2,
        [None, pa.py_buffer(np.array([0, 4, 8], dtype=np.int32)), pa.py_buffer(b"\xff\xfe\xc3(\xe2\x82abc")],
    )
    long_text = "refund " + "x" * (1 << 20)
    texts = ["", None, "😀🎉😀", "这是什么东西", long_text, "   \n\t  "]
    for model in defaults:
        labels, confidence = model.predict(texts)
        assert len(labels) == len(texts)
        assert labels.to_pylist()[:4] == ["other"] * 4
        assert labels[5].as_py() == "other"
        assert np.all((confidence >= 0) & (confidence <= 1))
        assert confidence[0] == confidence[1] == 0.0
        bad_labels, bad_conf = model.predict(invalid)
        assert len(bad_labels) == 2 and np.all(np.isfinite(bad_conf))


def test_input_forms_give_the_same_rows_in_order(defaults) -> None:
    texts = ["where is my order", "hello", None, "I want a refund", "thanks"]
    model = defaults[0]
    expected, expected_conf = model.predict(texts)
    chunked = pa.chunked_array([pa.array(texts[:2]), pa.array(texts[2:])])
    sliced = pa.array(["padding", *texts], type=pa.large_string()).slice(1)
    for form in (pa.array(texts), chunked, sliced):
        labels, confidence = model.predict(form)
        assert labels.equals(expected)
        np.testing.assert_array_equal(confidence, expected_conf)


def test_features_are_case_insensitive_including_latin1_capitals() -> None:
    spec = FeatureSpec(bits=16)
    _, upper = hashed_codes(["ÉCOLE Über Straße"], spec)
    _, lower = hashed_codes(["école über straße"], spec)
    np.testing.assert_array_equal(upper, lower)


def _toy_data() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for i in range(30):
        texts += [f"my invoice number {i} is wrong", f"the parcel {i} is late", f"hello friend {i}"]
        labels += ["billing", "delivery", "greeting"]
    return texts, labels


def test_train_save_load_round_trip(tmp_path) -> None:
    texts, labels = _toy_data()
    model = Categorizer.train("intent", texts, labels, c=10.0)
    assert model.labels == ["billing", "delivery", "greeting"]
    probe = ["wrong invoice", "late parcel", "hello", "qwertzuiop"]
    before, before_conf = model.predict(probe)
    assert before.to_pylist() == ["billing", "delivery", "greeting", "other"]
    model.save(tmp_path)
    loaded = LinearModel.load(tmp_path / "intent")
    after, after_conf = loaded.predict(probe)
    assert after.equals(before)
    np.testing.assert_array_equal(after_conf, before_conf)

    categorizer = Categorizer.load(tmp_path, device="cpu")
    assert categorizer.intent.labels == model.labels
    assert "billing" in categorizer.topic.labels  # topic missing from the folder: the default
    labels, _ = categorizer.predict_intent(["my invoice is wrong"])
    assert labels.to_pylist() == ["billing"]


def test_training_is_deterministic() -> None:
    texts, labels = _toy_data()
    first = Categorizer.train("topic", texts, labels)
    second = Categorizer.train("topic", texts, labels)
    np.testing.assert_array_equal(first.weights, second.weights)


def test_train_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="two distinct labels"):
        Categorizer.train("topic", ["a", "b"], ["x", "x"])
    with pytest.raises(ValueError, match="task must be"):
        Categorizer.train("emotion", ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match="does not exist"):
        Categorizer.load("/nonexistent/models")


def test_taxonomy_env_replaces_the_shipped_one(tmp_path, monkeypatch) -> None:
    custom = tmp_path / "taxonomy.yaml"
    custom.write_text(
        "topic:\n  labels:\n    pets: {keywords: [dog, cat, puppy]}\n    cars: {keywords: [engine, tyre, brakes]}\n"
        "intent:\n  labels:\n    hi: {examples: [hello, hi there]}\n    bye: {examples: [goodbye, see you]}\n"
    )
    monkeypatch.setenv("CONV_ANALYTICS_TAXONOMY", str(custom))
    monkeypatch.setenv("CONV_ANALYTICS_DEVICE", "cpu")
    # the setting reaches the categoriser through the resource the assets use
    resource = configured(CategorizerResource, Config.from_env())
    assert resource.taxonomy == str(custom) and resource.device == "cpu"
    categorizer = resource.load()
    labels, _ = categorizer.predict_topic(["my dog is ill", "the brakes squeak"])
    assert labels.to_pylist() == ["pets", "cars"]
    custom.write_text("topic: [not, a, mapping]\n")
    config = Config.from_env()  # as the CLI loads it (the resource caches what it loaded)
    with pytest.raises(ValueError, match="labels"):
        Categorizer.load(config.models, device=config.device, taxonomy_path=config.taxonomy)


def test_metrics_and_split() -> None:
    accuracy, macro_f1 = accuracy_and_macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert accuracy == 0.75
    assert macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    train, valid = holdout_split(["a"] * 10 + ["b"] * 5 + ["c"], 0.2, seed=1)
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == 16
    assert 15 in train  # a single example stays in train


def test_predict_table_has_the_contract_columns(defaults) -> None:
    categorizer = Categorizer(*defaults, device="cpu")
    table = categorizer.predict(["I love this, thank you!", "this is terrible", ""])
    assert table.column_names == [
        "topic",
        "topic_confidence",
        "intent",
        "intent_confidence",
        "sentiment",
        "sentiment_score",
    ]
    assert table.num_rows == 3
    assert table.column("sentiment").to_pylist() == ["positive", "negative", "neutral"]
    assert table.column("intent")[0].as_py() == "thanks"
