"""Compiling a CUDA kernel to PTX without a GPU: a CUDA toolkit's NVVM is enough, and it checks
that every function the kernel shares with the CPU is valid device code."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PTX_SCRIPT = """
import types
import numpy as np
import numba.cuda.dispatcher
from numba.core.typing.typeof import typeof
from numba.cuda import compile_ptx
from {module} import _score_kernel

# Device functions ask the current GPU for its compute capability; there is none here.
numba.cuda.dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(8, 0))
{arguments}
ptx, _ = compile_ptx(_score_kernel.py_func, tuple(typeof(a) for a in args), cc=(8, 0))
print(ptx.count(".entry"))
"""


def cuda_home() -> str | None:
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home and glob.glob(os.path.join(home, "**", "libnvvm.so*"), recursive=True):
            return home
    return None


def assert_compiles_to_ptx(module: str, arguments: str) -> None:
    """Compile `module`'s `_score_kernel` for the `args` tuple that the code in `arguments` builds,
    in a fresh interpreter without the simulator; skip where no toolkit is installed."""
    home = cuda_home()
    if home is None:
        pytest.skip("no CUDA toolkit libnvvm found (set CUDA_HOME) to compile the kernel to PTX")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    script = PTX_SCRIPT.format(module=module, arguments=textwrap.dedent(arguments))
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=dict(env, CUDA_HOME=home, PYTHONPATH=str(REPO)),
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "1"


def run_in_simulator(script: str, payload: object) -> dict:
    """Run `script` in a fresh interpreter under Numba's CUDA simulator with `payload` as JSON on its
    standard input; its last line of output, parsed as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(REPO)},
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
