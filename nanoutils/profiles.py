"""Run profiles and where a run's outputs go.

Three profiles size every notebook: ``smoke`` (seconds, for CI and tests),
``default`` (a 2-core laptop CPU, what ``make reproduce`` runs) and ``paper``
(the paper's settings, meant for a GPU). A notebook picks its sizes with
:meth:`Profile.pick`, so the three values sit side by side where they are used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PROFILES = ("smoke", "default", "paper")
ROOT = Path(__file__).resolve().parents[1]
FIGURES_DIR = ROOT / "figures"
#: Environment variable capping the epochs of every profile's training (``python -m nanoutils run
#: --max-epochs N`` sets it): a quick end-to-end check of a profile, e.g. the paper's on a CPU — not a result.
MAX_EPOCHS_ENV = "NANOUTILS_MAX_EPOCHS"


@dataclass(frozen=True)
class Profile:
    """A named run profile; ``root`` is the repository (outputs go under ``root/runs/<name>``)."""

    name: str
    root: Path = ROOT

    def __post_init__(self) -> None:
        if self.name not in PROFILES:
            raise ValueError(f"unknown profile {self.name!r}; choose one of {', '.join(PROFILES)}")

    def pick(self, *, smoke: T, default: T, paper: T) -> T:
        """The value for this profile."""
        return {"smoke": smoke, "default": default, "paper": paper}[self.name]

    @property
    def run_dir(self) -> Path:
        """``runs/<profile>/``: executed notebooks, data sets, checkpoints (ignored by git)."""
        return self.root / "runs" / self.name

    def subdir(self, name: str) -> Path:
        """``runs/<profile>/<name>/``, created if missing."""
        path = self.run_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def figures_dir(self) -> Path:
        """Where figures and tables go: ``figures/`` for the default profile (the committed ones, shown in the
        README), ``runs/<profile>/figures/`` for the smoke and paper profiles, so neither a CI run nor a paper
        run overwrites them."""
        path = self.root / "figures" if self.name == "default" else self.subdir("figures")
        path.mkdir(parents=True, exist_ok=True)
        return path


def get(profile: str | Profile) -> Profile:
    """A :class:`Profile` from its name (or itself)."""
    return profile if isinstance(profile, Profile) else Profile(str(profile))
