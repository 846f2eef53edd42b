"""Choose where the categorisation kernels run: the CPU by default, CUDA when asked for or found."""

from __future__ import annotations

from typing import Literal

from numba import config as numba_config

Device = Literal["cpu", "cuda"]
DEVICE_SETTINGS = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """True when Numba can launch CUDA kernels (a real GPU, or the simulator in tests)."""
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover - numba is a hard dependency
        return False
    if bool(numba_config.ENABLE_CUDASIM):
        return True
    try:
        return bool(cuda.is_available())
    except Exception:  # the driver itself can fail to load: that means no GPU
        return False


def resolve_device(setting: str | None = None) -> Device:
    """Turn the device setting (auto | cpu | cuda; None means auto) into the device to use.

    `auto` picks CUDA only on a real GPU (never the simulator, which is for tests);
    an explicit `cuda` without a usable GPU is an error rather than a silent fallback.
    """
    value = (setting or "auto").strip().lower()
    if value not in DEVICE_SETTINGS:
        raise ValueError(f"device {value!r} is not one of {', '.join(DEVICE_SETTINGS)}")
    if value == "cpu":
        return "cpu"
    if value == "cuda":
        if not cuda_available():
            raise RuntimeError("the device is set to cuda but Numba finds no usable CUDA GPU; set it to cpu or auto")
        return "cuda"
    simulated = bool(numba_config.ENABLE_CUDASIM)
    return "cuda" if (cuda_available() and not simulated) else "cpu"
