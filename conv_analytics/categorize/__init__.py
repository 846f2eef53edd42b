"""Topic, intent and sentiment for chat messages: Numba kernels over Arrow text, CPU or CUDA."""

from .categorizer import Categorizer

__all__ = ["Categorizer"]
