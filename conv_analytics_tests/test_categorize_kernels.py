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
