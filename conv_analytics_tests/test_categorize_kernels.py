"""CPU and CUDA kernels agree: labels identical, confidences within 1e-6 (CUDA simulator in a
subprocess, since the simulator must be switched on before numba.cuda is first imported)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from conv_analytics.categorize.features import FeatureSpec
from conv_analytics.categorize.kernels import hashing_cpu
from conv_analytics.text.arrow import utf8_buffers
from conv_analytics_tests.cuda_support import assert_compiles_to_ptx, run_in_simulator

REPO = Path(__file__).resolve().parents[1]

PARITY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from conv_analytics.categorize.device import resolve_device
    from conv_analytics.categorize.features import FeatureSpec
    from conv_analytics.categorize.models import FusedModel
    from conv_analytics.categorize.training import fit_linear

    texts, labels, probe = json.loads(sys.stdin.read())
    spec = FeatureSpec(bits=12, char_max=4)
    topic = fit_linear(texts, labels, task="topic", spec=spec)
    intent = fit_linear(texts[:3], ["a", "b", "a"], task="intent", spec=spec)
    both = FusedModel([topic, intent])  # two models in one pass, as Categorizer.predict runs them
    assert resolve_device("cuda") == "cuda"
    cpu_best, cpu_conf = both.predict_indices(probe, "cpu")
    gpu_best, gpu_conf = both.predict_indices(probe, "cuda")
    print(json.dumps({
        "cpu": cpu_best.tolist(), "gpu": gpu_best.tolist(),
        "max_diff": float(np.max(np.abs(cpu_conf - gpu_conf))),
        "single": topic.predict_indices(probe, "cpu")[0].tolist(),
    }))
    """
)


def test_cpu_and_cuda_simulator_agree() -> None:
    texts = ["my invoice is wrong", "the parcel is late", "hello there", "Rechnung falsch", "Paket verspätet"]
    labels = ["billing", "delivery", "greeting", "billing", "delivery"]
    probe = [
        "invoice wrong?",
        "",
        "HELLO!!",
        "Ünïcödé Straße 😀",
        "parcel late late late",
        "zzz",
        "a" * 300,
        "hello, my invoice and parcel",
    ]
    out = run_in_simulator(PARITY_SCRIPT, [texts, labels, probe])
    assert out["cpu"] == out["gpu"]
    assert out["max_diff"] < 1e-6
    assert [row[0] for row in out["cpu"]] == out["single"]  # fusing changes nothing
    assert out["cpu"][1] == [3, 2]  # empty text: each model's fallback index (after its labels)


def test_feature_counts_match_written_codes() -> None:
    texts = ["Hello, world!", "", "día über straße", "a b c", "x" * 100]
    offsets, data = utf8_buffers(texts)
    spec = FeatureSpec(bits=14)
    counts = hashing_cpu.count_features(offsets, data, spec.kernel_args())
    starts, codes = hashing_cpu.hash_features(offsets, data, spec.kernel_args())
    np.testing.assert_array_equal(np.diff(starts), counts)
    assert counts[1] == 0
    # "a b c": three unigrams, two bigrams, one 3-gram per word (" a ") -> 8
    assert counts[3] == 8
    word = codes[starts[3] : starts[4]]
    assert np.all((codes >= 0) & (codes < spec.n_codes))
    assert np.sum(word >= spec.dim) == 3  # the character n-grams sit in the second group
    # a 100-byte word is cut to max_word bytes for its character n-grams
    n_char = int(np.sum(codes[starts[4] : starts[5]] >= spec.dim))
    length = spec.max_word + 2
    assert n_char == sum(length - n + 1 for n in range(spec.char_min, spec.char_max + 1))


def test_cuda_kernel_compiles_to_ptx() -> None:
    assert_compiles_to_ptx(
        "conv_analytics.categorize.kernels.hashing_cuda",
        """
        args = (
            np.zeros(3, np.int64), np.zeros(4, np.uint8), 12, 3, 5, 24,  # texts, then the feature spec
            np.zeros(128, np.int64), np.zeros(128, np.int32), np.zeros(2),  # known, rank, unseen2
            np.zeros((10, 12), np.float32), np.zeros(6), np.zeros(3, np.int64),  # weights, bias, class offsets
            np.zeros(1, np.int32), np.zeros((2, 2), np.int32), np.zeros((2, 2)),  # no_int, labels, confidence
        )
        """,
    )


def random_texts(n: int, seed: int) -> list[str]:
    """Short texts mixing every kind of byte the tokenizers tell apart: ASCII letters, digits, each
    punctuation mark, quotes, whitespace and control characters, Latin-1 capitals, emoji, CJK."""
    pieces = list(" \t\n\x0b\x1c.,!?;:'\"`-()[]@#/\\_~abcXYZ019") + [
        "É",
        "é",
        "ß",
        "Ä",
        "😀",
        "日本",
        "\u00a0",
        "\x00",
        "\x7f",
    ]
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(pieces, int(rng.integers(0, 30)))) for _ in range(n)]


def test_one_pass_with_the_sentiment_kernel_matches_the_separate_kernels() -> None:
    """Categorizer.predict scores the fused models inside the sentiment kernel's pass over the bytes:
    the same labels, confidences (to the bit) and scores as the fused kernel and vader_compound alone."""
    from conv_analytics.categorize import Categorizer
    from conv_analytics.categorize.sentiment import vader_compound

    categorizer = Categorizer.load(device="cpu")
    assert categorizer.fused is not None and categorizer.fused.cpu_scoring(1) is not None
    words = "Hi! I can't log in... my card (the new one) was charged twice?? Thanks, DON'T close it: 3.5 x2"
    texts = [*random_texts(3000, seed=5), words, words.upper(), "", "   ", "?!", "'quoted'", "Ünïcödé Straße 😀"]
    # over the serial kernels' threshold too, so the prange path runs
    for batch in (texts, texts * 30):
        table = categorizer.predict(batch)
        best, confidence = categorizer.fused.predict_indices(batch, "cpu")
        assert table["topic"].to_pylist() == categorizer.topic.decode(best[:, 0]).to_pylist()
        assert table["intent"].to_pylist() == categorizer.intent.decode(best[:, 1]).to_pylist()
        np.testing.assert_array_equal(table["topic_confidence"].to_numpy(), confidence[:, 0])
        np.testing.assert_array_equal(table["intent_confidence"].to_numpy(), confidence[:, 1])
        np.testing.assert_array_equal(table["sentiment_score"].to_numpy(), vader_compound(batch, "cpu"))


def test_models_with_character_ngrams_keep_their_own_kernel() -> None:
    """The sentiment kernel's pass makes word features only: a fused model with character n-grams is
    scored by its own kernel, with the same result as before."""
    from conv_analytics.categorize import Categorizer
    from conv_analytics.categorize.training import fit_linear

    texts = ["my invoice is wrong", "the parcel is late", "hello there", "Rechnung falsch", "Paket verspätet"]
    spec = FeatureSpec(bits=12, char_max=4)
    topic = fit_linear(texts, ["billing", "delivery", "greeting", "billing", "delivery"], task="topic", spec=spec)
    intent = fit_linear(texts[:3], ["a", "b", "a"], task="intent", spec=spec)
    categorizer = Categorizer(topic, intent, "cpu")
    assert categorizer.fused.cpu_scoring(3) is None
    probe = random_texts(200, seed=6) + texts
    best, confidence = categorizer.fused.predict_indices(probe, "cpu")
    table = categorizer.predict(probe)
    assert table["topic"].to_pylist() == topic.decode(best[:, 0]).to_pylist()
    np.testing.assert_array_equal(table["intent_confidence"].to_numpy(), confidence[:, 1])
