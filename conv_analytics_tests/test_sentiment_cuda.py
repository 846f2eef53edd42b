"""The CUDA kernel: the simulator gives the CPU kernel's scores, and NVVM compiles it to PTX.

Numba's CUDA simulator must be switched on before numba.cuda is imported, so that comparison runs
in a fresh interpreter; it checks the kernel's logic (batching, per-thread scratch, the pre-pass
round trip). Compiling to PTX (where a CUDA toolkit's libnvvm is installed, no GPU needed) checks
that every rule function called from the kernel is valid CUDA device code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from conv_analytics.categorize.sentiment import vader_compound
from conv_analytics_tests.cuda_support import assert_compiles_to_ptx

TEXTS = [
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "ÉTÉ GOOD day, never so happy",
    "no no good ?? ??",
]

SCRIPT = """
import json, sys
from conv_analytics.categorize.device import resolve_device
from conv_analytics.categorize.sentiment import vader_compound
from conv_analytics_tests.cuda_support import assert_compiles_to_ptx
texts = json.loads(sys.stdin.read())
print(json.dumps({"device": resolve_device("cuda"), "scores": vader_compound(texts, device="cuda").tolist()}))
"""


def test_cuda_simulator_matches_cpu() -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        input=json.dumps(TEXTS),
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["device"] == "cuda"
    np.testing.assert_allclose(answer["scores"], vader_compound(TEXTS, device="cpu"), atol=1e-6)


def test_cuda_kernel_compiles_to_ptx() -> None:
    assert_compiles_to_ptx(
        "conv_analytics.categorize.kernels.sentiment_cuda",
        """
        from conv_analytics.categorize.sentiment import sentiment_tables
        texts = (np.zeros(3, np.int64), np.zeros(4, np.uint8))
        scratch = tuple(np.empty(4, t) for t in (np.int32, np.uint8, np.float64, np.float64, np.int64))
        results = (np.zeros(2), np.zeros(2, np.uint8))
        args = (texts, True, tuple(sentiment_tables()), scratch, results)
        """,
    )
