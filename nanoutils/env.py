"""Run environment: device choice, seeds, library versions and the start of every chapter."""

from __future__ import annotations

import importlib.metadata
import platform
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .profiles import Profile, get

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
    """Seed Python, NumPy and torch (CPU and CUDA) for a reproducible run, and make cuDNN pick deterministic
    algorithms (no benchmarking of alternatives)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads in torch (None: leave the count as it is), then restore
    the count it had."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def versions() -> dict[str, str]:
    """Versions of Python, nanoutils and the libraries the series uses (printed by each notebook)."""
    out = {"python": platform.python_version()}
    for pkg in ("nanoutils", "numpy", "scipy", "pandas", "torch", "torchdiffeq", "matplotlib", "seaborn", "papermill"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


class Chapter(NamedTuple):
    """What :func:`notebook_setup` builds: the ``profile`` (with its epoch cap), where ``figures`` go, the
    resolved ``device`` (None when not asked for) and the ``started`` time (``time.perf_counter()``, s)."""

    profile: Profile
    figures: Path
    device: str | None
    started: float


def notebook_setup(profile: str | Profile, device: str | None = None, *, max_epochs: int | None = None) -> Chapter:
    """The start of a chapter: print the library versions, the profile and the device (resolved by
    :func:`resolve_device` when ``device`` is given), set the series' plotting style, start the clock."""
    from . import plotting

    started = time.perf_counter()
    prof = get(profile, max_epochs=max_epochs)
    print(versions())
    resolved = None if device is None else resolve_device(device)
    cap = (
        ""
        if prof.max_epochs is None
        else f", every training capped at {prof.max_epochs} epochs (a check, not a result)"
    )
    print(f"profile {prof.name}" + ("" if resolved is None else f", device {resolved}") + cap)
    plotting.style()
    return Chapter(prof, prof.figures_dir, resolved, started)
