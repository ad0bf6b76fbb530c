"""Run profiles, every size they set, and where a run's outputs go.

Three profiles size every notebook: ``smoke`` (seconds, for CI and tests),
``default`` (a 2-core laptop CPU, what ``make reproduce`` runs) and ``paper``
(the paper's settings, meant for a GPU). :data:`SETTINGS` is the one table of
every knob of the three, side by side; modules and notebooks read their sizes
from it through :attr:`Profile.settings` (``python -m nanoutils profiles``
prints it). A profile can carry an epoch cap (``max_epochs``) that applies to
every training run: a quick end-to-end check of a profile, not a result.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

PROFILES = ("smoke", "default", "paper")
ROOT = Path(__file__).resolve().parents[1]
FIGURES_DIR = ROOT / "figures"


class Knob(NamedTuple):
    """One setting: its value in each profile, and what it sizes (where it is used)."""

    smoke: Any
    default: Any
    paper: Any
    doc: str


#: Every profile setting, the values side by side. A dict value is one knob with named parts (the same keys in
#: every profile). paper: the paper's settings where it gives them; default: tuned so the series runs on a
#: 2-core CPU well under an hour (notebook 04 reaches a held-out rejection error ≈ 0.02 within ~6 minutes of
#: pre-training; larger batches and learning rate, lr halved every epochs/5 as the paper).
SETTINGS: dict[str, Knob] = {
    # chapter 01: the DSPM-DE solver
    "solver_fluxes": Knob(8, 30, 60, "fluxes per rejection curve (01)"),
    "reference_cases": Knob(2, 6, 12, "mixtures solved by both DSPM-DE solvers (01)"),
    "timing_cases": Knob(200, 10_000, 10_000, "feed × flux cases timed in one batched solve (01)"),
    "departure_map_fluxes": Knob(6, 16, 24, "fluxes of the single-element departure map (01)"),
    "isotherm_fit_iterations": Knob(10, 300, 600, "Nelder–Mead iterations per charge-isotherm fit (01)"),
    "isotherm_fit_starts": Knob(1, 2, 4, "starting points per charge-isotherm fit (01)"),
    # chapter 02: Table 2, DSPM-DE fitted to whole data sets
    "table2_fit": Knob(
        {"anneal_maxiter": 1, "nm_maxiter": 5, "local": "gradient"},
        {"anneal_maxiter": 5, "nm_maxiter": 100, "local": "gradient"},
        {"anneal_maxiter": 100, "nm_maxiter": 200, "local": "gradient"},
        "eq. 11 budget of the Table 2 fits to a whole data set (02, fitting.fit): dual annealing, then the "
        "exact-Jacobian trust region (local='gradient'): χ² 6.84e5 on the VIRTUAL set, both Table 2 fits in 57 s, "
        "where 30 annealing + 300 Nelder–Mead iterations stopped at 7.97e5 after 355 s (benchmarks/RESULTS.md)",
    ),
    # chapter 03: the simulated pre-training set
    "pretraining_compositions": Knob(48, 4096, 32768, "Sobol feed compositions labelled by DSPM-DE (03)"),
    "pretraining_fluxes": Knob(6, 10, 16, "flux points per composition, J_max/n … J_max = 6e-5 m/s (03)"),
    "family_set": Knob(
        {"compositions": 48, "fluxes": 6, "membrane_block": 8},
        {"compositions": 2048, "fluxes": 6, "membrane_block": 4},
        {"compositions": 32768, "fluxes": 16, "membrane_block": 32},
        "the membrane-family set (03, 04; membrane_family): Sobol compositions, fluxes, and compositions labelled on "
        "each membrane drawn from the prior (one batched Pitzer DSPM-DE call per membrane: a call of one composition "
        "costs ~10× a composition of a 128-batch, benchmarks/RESULTS.md); default: 512 membranes in ≈ 60 s of "
        "labelling (4096 compositions on 1024 membranes: 138 s, and 14.2 pp instead of 18.3 on unseen membranes)",
    ),
    # networks: parameter counts of the baselines within ±15 % of the neural ODE's (tests/test_baselines.py)
    "neural_ode_width": Knob(16, 128, 584, "hidden width of the neural ODE; paper: ≈1.05 M parameters (04)"),
    "neural_ode_solver": Knob(
        {"method": "rk4", "step_size": 0.1, "error_norm": "rms", "rtol": 1e-4, "atol": 1e-6},
        {"method": "rk4", "step_size": 0.1, "error_norm": "rms", "rtol": 1e-4, "atol": 1e-6},
        {"method": "dopri5", "step_size": None, "error_norm": "per_sample", "rtol": 1e-3, "atol": 1e-4},
        "ODE solver; rk4 with 10 τ steps on a CPU; dopri5 as the paper, per-sample error norm, tolerances at the "
        "held-out accuracy (benchmarks/RESULTS.md) (04)",
    ),
    "neural_ode_stiffness_penalty": Knob(
        0.0, 0.0, 1e-4, "weight of the field's Jacobian penalty: keeps dopri5's step count from growing (04)"
    ),
    "resnet_width": Knob(16, 113, 508, "hidden width of the ResNet and the PINN (06)"),
    "unet_width": Knob(3, 18, 79, "channels of the U-Net's first level (06)"),
    # training
    "pretraining": Knob(
        {"epochs": 4, "batch_size": 32, "lr": 3e-3},
        {"epochs": 250, "batch_size": 128, "lr": 3e-3},
        {"epochs": 1000, "batch_size": 32, "lr": 1e-3},
        "eq. 4 pre-training loop, every deep model (04, 06; training.TrainConfig)",
    ),
    "finetuning": Knob(
        {"epochs": 3, "batch_size": 16, "lr": 1e-3, "patience": None},
        {"epochs": 120, "batch_size": 16, "lr": 1e-3, "patience": 30},
        {"epochs": 1000, "batch_size": 32, "lr": 1e-3, "patience": 200},
        "eq. 5 fine-tuning loop; patience: early stopping on validation feeds (05, 06)",
    ),
    "family_pretraining": Knob(
        {"epochs": 4, "batch_size": 32, "lr": 3e-3},
        {"epochs": 150, "batch_size": 128, "lr": 3e-3},
        {"epochs": 1000, "batch_size": 32, "lr": 1e-3},
        "eq. 4 pre-training loop of the membrane-aware neural ODE on the family set (04; training.TrainConfig)",
    ),
    "code_calibration": Knob(
        {"epochs": 3, "batch_size": 16, "lr": 3e-2},
        {"epochs": 60, "batch_size": 16, "lr": 3e-2},
        {"epochs": 200, "batch_size": 16, "lr": 1e-2},
        "stage (a) of the membrane-family calibration: gradients on the membrane code alone (calibration)",
    ),
    "finetuning_simulated_feeds": Knob(4, 48, 512, "DSPM-DE feeds mixed into fine-tuning, weight 1 each (05, 06)"),
    # Table 1: the same budgets for every model
    "search_lr": Knob(
        (1e-3,), (1e-3, 3e-3), (3e-4, 1e-3, 3e-3), "fine-tuning learning rates searched for every deep model (06)"
    ),
    "baseline_fit": Knob(
        {"anneal_maxiter": 0, "nm_maxiter": 10},
        {"anneal_maxiter": 5, "nm_maxiter": 100},
        {"anneal_maxiter": 40, "nm_maxiter": 400},
        "eq. 11 budget of DSPM-DE fitted on training feeds, the baseline (05, 06)",
    ),
    "sf_fit": Knob(
        {"n_starts": 1, "max_nfev": 3},
        {"n_starts": 1, "max_nfev": 40},
        {"n_starts": 3, "max_nfev": 60},
        "fit budget of the solution-friction model (06, friction.fit)",
    ),
    "sdem_fit": Knob(
        {"n_starts": 1, "max_nfev": 10},
        {"n_starts": 3, "max_nfev": 100},
        {"n_starts": 6, "max_nfev": 200},
        "fit budget of SDEM (calibrate --model sdem, sdem.fit)",
    ),
    # Table 1's real column: the transfer benchmark (comparison.real_transfer)
    "transfer_seeds": Knob(
        1, 3, 5, "seeds per learned model in the real-data transfer, for its spread; smoke: 1 keeps CI fast (06)"
    ),
    "transfer_in_sample_seeds": Knob(
        1,
        1,
        5,
        "of those, the seeds of the in-sample calibration on all real feeds; default 1 saves a quarter of the "
        "learned calibrations (06)",
    ),
    "hybrid": Knob(
        {
            "epochs": 4,
            "batch_size": 64,
            "lr": 1e-2,
            "width": 8,
            "x_range": 50.0,
            "dw_range": 2.0,
            "reg_weight": 1e-3,
            "simulated_feeds": 0,
        },
        {
            "epochs": 150,
            "batch_size": 64,
            "lr": 1e-2,
            "width": 16,
            "x_range": 50.0,
            "dw_range": 2.0,
            "reg_weight": 1e-3,
            "simulated_feeds": 0,
        },
        {
            "epochs": 400,
            "batch_size": 64,
            "lr": 1e-2,
            "width": 32,
            "x_range": 50.0,
            "dw_range": 2.0,
            "reg_weight": 1e-3,
            "simulated_feeds": 0,
        },
        "hybrid_dspmde: eq. 5 loop (float64, one step per 64 feeds), closure network width, correction bounds "
        "(X_d mol/m³, ΔW k_B T), regulariser weight toward the fitted dspmde_plus; no simulated feeds: the "
        "regulariser anchors it to its own fit, Table 2 labels would pull it to another membrane (models, calibrate)",
    ),
    "dspmde_plus_fit": Knob(
        {"nm_maxiter": 3},
        {"nm_maxiter": 25},
        {"nm_maxiter": 100},
        "local-search budget of dspmde_plus (calibrate --model dspmde_plus, dspmde_plus.fit)",
    ),
}
#: Knobs whose ``epochs`` a profile's ``max_epochs`` caps.
EPOCH_KNOBS = ("pretraining", "finetuning", "hybrid", "code_calibration", "family_pretraining")


class ProfileError(ValueError):
    """An unknown profile or a bad epoch cap; the message names it."""


class Settings(Mapping[str, Any]):
    """The knobs of one profile (a read-only mapping, also read as attributes: ``settings.pretraining_fluxes``);
    with ``max_epochs`` the ``epochs`` of :data:`EPOCH_KNOBS` are capped at it."""

    def __init__(self, profile: str, max_epochs: int | None = None) -> None:
        self._values = {name: copy.deepcopy(getattr(knob, profile)) for name, knob in SETTINGS.items()}
        for name in EPOCH_KNOBS if max_epochs is not None else ():
            self._values[name]["epochs"] = min(self._values[name]["epochs"], max_epochs)

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            raise KeyError(f"unknown profile setting {name!r}; see nanoutils.profiles.SETTINGS")
        return copy.deepcopy(self._values[name])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._values:
            raise AttributeError(f"unknown profile setting {name!r}; see nanoutils.profiles.SETTINGS")
        return self[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings({self._values})"


@dataclass(frozen=True)
class Profile:
    """A named run profile; ``root`` is the repository (outputs go under ``root/runs/<name>``); ``max_epochs``
    (None: none) caps the epochs of every training run of the profile."""

    name: str
    root: Path = ROOT
    max_epochs: int | None = None

    def __post_init__(self) -> None:
        if self.name not in PROFILES:
            raise ProfileError(f"unknown profile {self.name!r}; choose one of {', '.join(PROFILES)}")
        if self.max_epochs is not None and (
            isinstance(self.max_epochs, bool) or not isinstance(self.max_epochs, int) or self.max_epochs < 1
        ):
            raise ProfileError(f"max_epochs must be a whole number ≥ 1, got {self.max_epochs!r}")

    @property
    def settings(self) -> Settings:
        """This profile's column of :data:`SETTINGS` (epochs capped at ``max_epochs``)."""
        return Settings(self.name, self.max_epochs)

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


def get(profile: str | Profile, max_epochs: int | None = None) -> Profile:
    """A :class:`Profile` from its name (or itself), with the epoch cap ``max_epochs`` when one is given."""
    prof = profile if isinstance(profile, Profile) else Profile(str(profile))
    return prof if max_epochs is None else replace(prof, max_epochs=max_epochs)


def table() -> str:
    """:data:`SETTINGS` as a plain-text table: one row per knob (a dict knob one row per part), a column per
    profile, and what the knob sizes."""
    rows: list[tuple[str, ...]] = [("knob", *PROFILES, "what it sizes (chapter)")]
    for name, knob in SETTINGS.items():
        values = knob[:3]
        if isinstance(knob.default, dict):
            for i, part in enumerate(knob.default):
                rows.append((f"{name}.{part}", *(_text(v[part]) for v in values), knob.doc if i == 0 else ""))
        else:
            rows.append((name, *(_text(v) for v in values), knob.doc))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(f"{c:<{w}}" for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len(rows[0][4]))
    return "\n".join(line.rstrip() for line in lines)


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(_text(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
