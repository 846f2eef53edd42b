"""`train` then `categorize` on a tiny JSONL file, with bad lines reported by number."""

from __future__ import annotations

import json

from click.testing import CliRunner

from conv_analytics.cli.categorize import categorize, train


def _write_training_file(path) -> None:
    lines = []
    for i in range(20):
        lines.append(json.dumps({"text": f"my invoice {i} is wrong", "label": "billing"}))
        lines.append(json.dumps({"text": f"the parcel {i} is late", "label": "delivery"}))
    lines.insert(3, "{not json")
    lines.insert(7, json.dumps({"text": "no label here"}))
    path.write_text("\n".join(lines) + "\n")


def test_train_then_categorize(tmp_path) -> None:
    runner = CliRunner()
    training = tmp_path / "train.jsonl"
    _write_training_file(training)
    models = tmp_path / "models"
    result = runner.invoke(
        train,
        ["--task", "topic", "--input", str(training), "--model-out", str(models), "--holdout", "0.25", "--bits", "14"],
    )
    assert result.exit_code == 0, result.output
    assert "line 4: skipped, not valid JSON" in result.output
    assert "line 8: skipped, field 'label' is missing" in result.output
    assert "read 40 records" in result.output and "2 bad lines" in result.output
    assert "accuracy 1.0000  macro-F1 1.0000" in result.output
    assert (models / "topic" / "model.json").is_file()

    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": 1, "text": "invoice wrong"})
        + "\n[1, 2]\n\n"
        + json.dumps({"id": 2, "text": "parcel late", "extra": {"kept": True}})
        + "\n"
        + json.dumps({"id": 3, "text": 5})
        + "\n"
        + json.dumps({"id": 4, "text": ""})
        + "\n"
    )
    output = tmp_path / "out" / "labelled.jsonl"
    result = runner.invoke(categorize, ["--model", str(models), "--input", str(source), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "line 2: skipped, expected a JSON object" in result.output
    assert "line 5: skipped, field 'text' is not a string" in result.output
    assert "wrote 3 records" in result.output and "2 bad lines" in result.output
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in records] == [1, 2, 4]
    assert [r["topic"] for r in records] == ["billing", "delivery", "other"]
    assert records[1]["extra"] == {"kept": True}
    for record in records:
        assert record["intent"]  # the default intent model fills in
        assert record["sentiment"] in {"negative", "neutral", "positive"}
        assert 0.0 <= record["topic_confidence"] <= 1.0
        assert -1.0 <= record["sentiment_score"] <= 1.0


def test_train_needs_two_labels(tmp_path) -> None:
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"text": "a", "label": "x"}) + "\n")
    result = CliRunner().invoke(train, ["--task", "intent", "--input", str(data), "--model-out", str(tmp_path / "m")])
    assert result.exit_code != 0
    assert "at least two distinct labels" in result.output
    result = CliRunner().invoke(
        train,
        ["--task", "intent", "--input", str(data), "--model-out", str(tmp_path / "m"), "--char-ngrams", "x"],
    )
    assert result.exit_code != 0
    assert "character n-grams must be" in result.output


def test_train_sentiment_fits_only_thresholds(tmp_path) -> None:
    from conv_analytics.categorize import Categorizer

    samples = {
        "positive": ["I love it, great job", "wonderful, thank you", "excellent service"],
        "negative": ["this is awful", "terrible, I hate it", "worst experience ever"],
        "neutral": ["the parcel is blue", "my order number is 12", "it arrived on Monday"],
    }
    data = tmp_path / "sentiment.jsonl"
    data.write_text(
        "".join(json.dumps({"text": t, "label": label}) + "\n" for label, ts in samples.items() for t in ts * 3)
    )
    models = tmp_path / "models"
    result = CliRunner().invoke(
        train, ["--task", "sentiment", "--input", str(data), "--model-out", str(models), "--holdout", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "VADER compound scores kept; fitted cut-offs" in result.output
    saved = json.loads((models / "sentiment" / "thresholds.json").read_text())
    assert saved["negative_below"] < 0 < saved["positive_above"]
    categorizer = Categorizer.load(models, device="cpu")
    assert categorizer.sentiment_thresholds == (saved["negative_below"], saved["positive_above"])
    labels, _ = categorizer.predict_sentiment(["I love it", "I hate it", "the box"])
    assert labels.to_pylist() == ["positive", "negative", "neutral"]
