"""Topic discovery: fit and assign, edge cases, redacted examples, persistence, stable ids across
refits, curation through the exported taxonomy YAML, the CLI, and CPU/CUDA-simulator parity."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from conv_analytics.categorize.kernels import topics_cpu
from conv_analytics.categorize.topics import (
    OTHER,
    FitSettings,
    TopicModel,
    _class_keywords,
    _label,
    align,
    fit,
    fit_assign,
    stop_hashes,
)
from conv_analytics.categorize.training import load_taxonomy
from conv_analytics.cli.topics import topics as topics_cli
from conv_analytics.text.arrow import utf8_buffers
from conv_analytics_tests.cuda_support import assert_compiles_to_ptx, run_in_simulator
from conv_analytics_tests.multiwoz_support import MULTIWOZ_WORDS, domains_named

REPO = Path(__file__).resolve().parents[1]

THEMES = {
    "train": ["train", "ticket", "station", "cambridge", "departure", "platform", "railway"],
    "hotel": ["hotel", "room", "night", "parking", "wifi", "breakfast", "guesthouse"],
    "refund": ["refund", "invoice", "charge", "payment", "receipt", "billing", "overcharged"],
}
FRAMES = ["I need a {} and a {} for the {}", "can you help with the {} {} near {}", "where is my {} {} {} please"]


def corpus(themes: dict[str, list[str]], per_theme: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, gold = [], []
    for name, words in themes.items():
        for _ in range(per_theme):
            picked = rng.choice(words, size=3, replace=False)
            texts.append(FRAMES[int(rng.integers(len(FRAMES)))].format(*picked))
            gold.append(name)
    return texts, gold


def purity(ids: np.ndarray, gold: list[str]) -> float:
    """Share of texts whose topic's majority gold label is their own."""
    gold_arr = np.array(gold)
    total = 0
    for topic_id in np.unique(ids):
        members = gold_arr[ids == topic_id]
        total += np.unique(members, return_counts=True)[1].max()
    return total / len(gold)


@pytest.fixture(scope="module")
def themed() -> tuple[list[str], list[str], TopicModel, np.ndarray]:
    texts, gold = corpus(THEMES, 60)
    model, table = fit_assign(texts, "auto")
    return texts, gold, model, table.column("topic_id").to_numpy()


def test_auto_finds_the_themes_and_names_them(themed) -> None:
    texts, gold, model, ids = themed
    shown = model.shown_topics()
    assert len(shown) == 3
    assert purity(ids, gold) > 0.95
    assert np.mean(ids >= 0) >= 0.9
    labels = " ".join(t.label for t in shown)
    for theme in THEMES.values():
        assert any(word in labels for word in theme)
    for topic in shown:
        assert topic.size > 40
        assert len(topic.examples) == 3
        assert topic.keywords and all(w > 0 for _, w in topic.keywords)
        assert "the" not in topic.label.split()


def test_multiwoz_labels_name_what_the_conversations_are_about(shared_data) -> None:
    """All of MultiWOZ validation (999 conversations, many over several domains), user turns
    joined: each of the six largest topics' label holds a word of the domain most of its
    conversations are about, and between them they name all five domains. Printed with -s."""
    path = shared_data / "multiwoz" / "val.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = ["\n".join(m["text"] for m in r["messages"] if m["speaker"] == "user") for r in rows]
    model, table = fit_assign(texts)
    ids = table.column("topic_id").to_numpy()
    named = set()
    for topic in model.shown_topics()[:6]:
        domains = [d for r, i in zip(rows, ids, strict=True) if i == topic.id for d in r["topic"]]
        majority = max(MULTIWOZ_WORDS, key=domains.count)
        print(f"{topic.size:>5}  {topic.label:<45} mostly {majority}")
        assert majority in domains_named(topic.label), (topic.label, majority)
        named |= domains_named(topic.label)
    assert named == set(MULTIWOZ_WORDS)


def test_keywords_favour_what_most_of_a_topic_shares() -> None:
    """A word most of a group's texts use beats a name that a few of them repeat, and a word every
    group uses has no weight at all."""
    taxis = [f"I need a taxi please from {p}" for p in ["the station", "the museum", "the hotel", "town"] * 5]
    taxis += ["taxi to bishop stortford, bishop stortford, bishop stortford"] * 3
    trains = [f"I need a train please to {p}" for p in ["london", "ely", "stansted", "norwich"] * 5]
    keywords = _class_keywords([taxis, trains])
    assert keywords[0][0][0] == "taxi" and keywords[1][0][0] == "train"
    assert "need" not in {t for group in keywords for t, _ in group}
    assert _label(keywords[0]).split(" · ")[0] == "taxi"


def test_label_says_each_thing_once() -> None:
    assert _label([("taxi", 2.0), ("book taxi", 0.6), ("contact", 0.5), ("need taxi", 0.4), ("pick", 0.3)]) == (
        "taxi · contact · pick"
    )
    # a bigram about as heavy as its words replaces them
    assert _label([("free", 2.0), ("wifi", 1.6), ("free wifi", 1.4), ("park", 1.2), ("star", 1.1)]) == (
        "free wifi · park · star"
    )
    assert _label([]) == ""


def test_assign_matches_fit_and_places_far_texts_nowhere(themed) -> None:
    texts, _, model, ids = themed
    table = model.assign([*texts[:10], "zebra quantum xylophone", ""])
    assert table.schema.names == ["topic_id", "topic", "topic_score"]
    np.testing.assert_array_equal(table.column("topic_id").to_numpy()[:10], ids[:10])
    assert table.column("topic_id").to_pylist()[-2:] == [-1, -1]
    assert table.column("topic").to_pylist()[-2:] == [OTHER, OTHER]
    labels = {t.id: t.label for t in model.shown_topics()}
    assert table.column("topic").to_pylist()[0] == labels[int(ids[0])]


def test_fixed_number_of_topics() -> None:
    texts, gold = corpus(THEMES, 40)
    model = fit(texts, 5)
    assert 1 <= len(model.shown_topics()) <= 5
    with pytest.raises(ValueError, match="positive integer"):
        fit(texts, 0)


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["just one conversation about a lost parcel"],
        ["same words again and again"] * 50,
        ["Je voudrais réserver une chambre d'hôtel", "Ich möchte ein Zugticket kaufen", "Quiero cambiar mi vuelo"] * 10,
        ["😀😀 🎉", "🙏", "😀 🎉🎉", "🔥🔥🔥"] * 10,
    ],
    ids=["empty", "one", "identical", "non-english", "emoji"],
)
def test_edge_cases_give_a_model_and_assignments(texts: list[str]) -> None:
    model, table = fit_assign(texts)
    assert table.num_rows == len(texts)
    again = TopicModel.from_bytes(model.to_bytes()).assign(texts)
    assert again.column("topic_id").to_pylist() == table.column("topic_id").to_pylist()
    placed = [i for i in table.column("topic_id").to_pylist() if i >= 0]
    assert set(placed) <= {t.id for t in model.shown_topics()}
    assert all(-1.0 <= score <= 1.0 + 1e-9 for score in table.column("topic_score").to_pylist())
    if len(set(texts)) == 1:
        assert len(model.shown_topics()) == 1 and len(placed) == len(texts)


def test_examples_and_keywords_are_redacted() -> None:
    texts, gold = corpus(THEMES, 40)
    contact = " write to jane.doe@example.com or ring +44 20 7946 0958"
    texts = [t + contact if g == "hotel" else t for t, g in zip(texts, gold, strict=True)]
    model = fit(texts)
    examples = [e for t in model.shown_topics() for e in t.examples]
    assert not any("@" in e or "7946" in e for e in examples)
    assert any("[EMAIL]" in e and "[PHONE]" in e for e in examples)
    words = {w for t in model.shown_topics() for k, _ in t.keywords for w in k.split()}
    assert "hotel" in words and not words & {"jane", "doe", "example", "com", "email", "phone"}


def test_save_load_and_table_round_trip(themed, tmp_path: Path) -> None:
    texts, _, model, ids = themed
    loaded = TopicModel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.assign(texts).column("topic_id").to_numpy(), ids)
    table = model.to_table()
    assert table.num_rows == 1 and table.column("n_topics")[0].as_py() == 3
    from_table = TopicModel.from_table(table)
    assert [t.label for t in from_table.shown_topics()] == [t.label for t in model.shown_topics()]
    with pytest.raises(ValueError, match="cannot read"):
        TopicModel.load(tmp_path / "missing")


# 150: the new topics are looked for among the texts the model places nowhere and a share of the others
@pytest.mark.parametrize("graph_sample", [FitSettings.graph_sample, 150])
def test_refit_keeps_ids_and_gives_a_new_topic_a_new_id(themed, graph_sample: int) -> None:
    texts, gold, model, ids = themed
    later, later_gold = corpus(THEMES, 60, seed=1)
    newcomer = {"garden": ["garden", "tulips", "compost", "seedlings", "lawn", "hedge", "mower"]}
    extra, extra_gold = corpus(newcomer, 60, seed=2)
    assert len(later + extra) > 150
    refit = model.refit(later + extra, settings=FitSettings(graph_sample=graph_sample))
    old_ids = model.assign(later).column("topic_id").to_numpy()
    new_ids = refit.assign(later).column("topic_id").to_numpy()
    assert np.mean(old_ids == new_ids) >= 0.9
    garden = refit.assign(extra).column("topic_id").to_numpy()
    garden_id = int(np.bincount(garden[garden >= 0]).argmax())
    assert garden_id not in model.topics
    assert np.mean(garden == garden_id) > 0.9
    event = refit.info["history"][-1]
    assert garden_id in event["new"] and sorted(event["kept"]) == sorted(model.topics)
    kept_labels = {i: model.topics[i].label for i in model.topics}
    assert {i: refit.topics[i].label for i in model.topics} == kept_labels


def test_align_records_merges_and_splits() -> None:
    texts, _ = corpus(THEMES, 60)
    three, four = fit(texts, 3), fit(texts, 4)  # four topics over three themes: one theme is split

    merged = fit(texts, 3)
    align(merged, four, texts)
    (merge,) = merged.info["history"][-1]["merges"]
    assert merge["into"] in merged.topics and merge["id"] in merged.topics[merge["into"]].aliases
    assert sorted(merged.info["history"][-1]["kept"]) == sorted(set(four.topics) - {merge["id"]})

    split = fit(texts, 4)
    align(split, three, texts)
    event = split.info["history"][-1]
    (new_id,) = event["new"]
    assert event["splits"] == [{"id": new_id, "from": event["splits"][0]["from"]}]
    assert event["splits"][0]["from"] in three.topics and new_id not in three.topics


def test_curated_taxonomy_renames_merges_and_deletes(themed, tmp_path: Path) -> None:
    texts, gold, model, ids = themed
    taxonomy = model.to_taxonomy({"intent": load_taxonomy(None)["intent"]})
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(taxonomy, allow_unicode=True), encoding="utf-8")
    assert set(load_taxonomy(path)["topic"]["labels"]) == {t.label for t in model.shown_topics()}

    first, second, third = (t.id for t in model.shown_topics())
    curated_yaml = {"topic": {"labels": {"Travel": {"ids": [first, second]}}}}  # third deleted
    curated = model.curated(curated_yaml)
    result = curated.assign(texts)
    out_ids = result.column("topic_id").to_numpy()
    assert set(np.unique(out_ids)) <= {first, -1}
    np.testing.assert_array_equal(out_ids == first, np.isin(ids, [first, second]))
    assert set(result.column("topic").to_pylist()) <= {"Travel", OTHER}
    (travel,) = curated.shown_topics()
    assert travel.label == "Travel" and travel.aliases == [second]
    assert travel.size == model.topics[first].size + model.topics[second].size
    assert third not in {t.id for t in curated.shown_topics()}
    assert model.curated(load_taxonomy(None)) is model  # a hand-written taxonomy (no ids) curates nothing
    # the curation survives a save and a refit on the same kind of data
    refit = TopicModel.from_bytes(curated.to_bytes()).refit(texts)
    assert set(refit.assign(texts).column("topic").to_pylist()) <= {"Travel", OTHER}


def test_content_codes_drop_stop_words_and_numbers_unless_nothing_is_left() -> None:
    stops = stop_hashes(["en"])
    offsets, data = utf8_buffers(["the train ticket", "Train  TICKET 42!", "the and of", ""])
    starts, codes = topics_cpu.content_codes(offsets, data, 16, stops)
    rows = [codes[starts[i] : starts[i + 1]].tolist() for i in range(4)]
    assert rows[0] == rows[1] and len(rows[0]) == 3  # two words and their bigram
    assert sum(c >= 1 << 16 for c in rows[0]) == 1  # bigrams sit after the words
    assert len(rows[2]) == 5  # only stop words: all of them are kept (3 words, 2 bigrams)
    assert rows[3] == []


def test_merge_communities_finds_the_blocks() -> None:
    block = np.ones((4, 4))
    weights = np.zeros((8, 8))
    weights[:4, :4] = block
    weights[4:, 4:] = block
    weights[3, 4] = weights[4, 3] = 0.1
    groups = topics_cpu.merge_communities(weights, 1.0)
    assert groups.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_nearest_neighbours_and_mutual_weights() -> None:
    z = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99], [0.7, 0.7]])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    sims = z @ z.T
    nearest, values = topics_cpu.nearest_neighbours(sims, 0, 2)
    for i in range(5):
        expected = [j for j in np.argsort(-sims[i], kind="stable") if j != i][:2]
        assert nearest[i].tolist() == expected
        np.testing.assert_allclose(values[i], sims[i, expected])
    weights = np.zeros((2, 2))
    topics_cpu.mutual_weights(nearest, values, np.array([0, 0, 1, 1, 1]), weights)
    mutual = [(i, int(j)) for i in range(5) for j in nearest[i] if j > i and i in nearest[j]]
    assert (0, 1) in mutual and (2, 3) in mutual
    expected_weights = np.zeros((2, 2))
    for i, j in mutual:
        group_i, group_j = int(i >= 2), int(j >= 2)
        expected_weights[group_i, group_j] += sims[i, j]
        expected_weights[group_j, group_i] += sims[i, j]
    np.testing.assert_allclose(weights, expected_weights)


def test_kmeans_plus_plus_spreads_seeds_and_survives_duplicates() -> None:
    z = np.repeat(np.eye(3), 10, axis=0)
    picks = topics_cpu.kmeans_plus_plus(z, 3, np.array([0.0, 0.5, 0.9]))
    assert sorted(int(p) // 10 for p in picks) == [0, 1, 2]  # one seed per direction
    same = topics_cpu.kmeans_plus_plus(np.ones((5, 2)) / np.sqrt(2), 3, np.array([0.1, 0.5, 0.9]))
    assert all(0 <= p < 5 for p in same)


def run_cli(*args: str):
    return CliRunner().invoke(topics_cli, list(args), catch_exceptions=False)


def test_cli_discover_and_export(tmp_path: Path) -> None:
    texts, _ = corpus(THEMES, 40)
    source = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": i, "body": t}) for i, t in enumerate(texts)]
    lines[5:5] = ["{not json", json.dumps({"id": "x"})]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run_cli("discover", "--input", str(source), "--output", str(out), "--text-field", "body",
                     "--model-out", str(tmp_path / "model"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 malformed lines skipped" in result.output and "line 6: skipped" in result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == list(range(len(texts)))
    assert all(isinstance(r["topic_id"], int) and isinstance(r["topic_score"], float) for r in records)
    assert all((r["topic"] == OTHER) == (r["topic_id"] == -1) for r in records)
    n_topics = len({r["topic_id"] for r in records if r["topic_id"] >= 0})
    assert f"{n_topics} topics" in result.output and n_topics >= 3
    top = max((r for r in records if r["topic_id"] == 0), key=lambda r: r["topic_score"])
    assert f"e.g. id {top['id']}" in result.output  # the most typical record of the largest topic

    exported = tmp_path / "topics.yaml"
    result = run_cli("export", "--model", str(tmp_path / "model"), "--output", str(exported))
    assert result.exit_code == 0, result.output
    taxonomy = load_taxonomy(exported)
    assert len(taxonomy["topic"]["labels"]) == n_topics
    assert all(entry["ids"] for entry in taxonomy["topic"]["labels"].values())


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "does not exist"),
        ("{oops\n", [], "no usable records"),
        ('{"text": "fine"}\n', ["--topics", "zero"], "expected 'auto' or a positive integer"),
        ('{"body": "no text field"}\n', [], "no usable records"),
        ('{"text": "fine"}\n', ["--model-out", "/dev/null/model"], "cannot write"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path: Path, content: str | None, args: list[str], message: str) -> None:
    source = tmp_path / "in.jsonl"
    if content is not None:
        source.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(
        topics_cli, ["discover", "--input", str(source), "--output", str(tmp_path / "o.jsonl"), *args]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (KeyError, TypeError))


PARITY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from conv_analytics.categorize.device import resolve_device
    from conv_analytics.categorize.topics import FitSettings, fit

    texts, probe = json.loads(sys.stdin.read())
    model = fit(texts, settings=FitSettings(dims=16))
    assert resolve_device("cuda") == "cuda"
    cpu_rows, cpu_scores = model.assign_rows(probe, "cpu")
    gpu_rows, gpu_scores = model.assign_rows(probe, "cuda")
    print(json.dumps({"cpu": cpu_rows.tolist(), "gpu": gpu_rows.tolist(),
                      "max_diff": float(np.max(np.abs(cpu_scores - gpu_scores)))}))
    """
)


def test_cpu_and_cuda_simulator_assign_the_same_topics() -> None:
    texts, _ = corpus(THEMES, 15)
    probe = [*texts[::7], "", "zebra", "the", "hotel train refund", "😀"]
    out = run_in_simulator(PARITY_SCRIPT, [texts, probe])
    assert out["cpu"] == out["gpu"]
    assert max(out["cpu"]) >= 0 and out["cpu"][-5] == -1
    assert out["max_diff"] < 1e-9


def test_cuda_kernel_compiles_to_ptx() -> None:
    assert_compiles_to_ptx(
        "conv_analytics.categorize.kernels.topics_cuda",
        """
        args = (
            np.zeros(3, np.int64), np.zeros(4, np.int32), np.zeros(64, np.int32), np.zeros(8),  # texts, rows, idf
            np.zeros((8, 16)), np.zeros((3, 16)), np.zeros(3),  # projection, centres, thresholds
            np.zeros(2, np.int32), np.zeros(2),  # topics, scores
        )
        """,
    )


def test_fit_settings_reach_the_model() -> None:
    texts, _ = corpus(THEMES, 20)
    model = fit(texts, settings=FitSettings(dims=8, bits=14))
    assert model.projection.shape[1] <= 8 and model.bits == 14
    assert model.info["settings"]["dims"] == 8
    with pytest.raises(ValueError, match="dims must be"):
        FitSettings(dims=300)
