"""Run environment: device choice, seeds and library versions."""
from __future__ import annotations

import importlib.metadata
import platform
import random

import numpy as np

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> str:
    """``"cuda"`` when asked for and available (``auto`` picks it when present), else ``"cpu"``."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise RuntimeError("device='cuda' was requested but torch sees no CUDA device")
    return "cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for a reproducible run."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    """Versions of Python, nanoutils and the libraries the series uses (printed by each notebook)."""
    out = {"python": platform.python_version()}
    for pkg in ("nanoutils", "numpy", "scipy", "pandas", "torch", "torchdiffeq", "matplotlib", "seaborn", "papermill"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
