"""Table 1 of the paper (Section 3): every model trained the same way and scored by one metric.

Deep models (neural ODE, PINN, ResNet, U-Net; parameter counts matched within 15 %), one procedure:

1. **pre-training** on the simulated DSPM-DE set (``pretraining_set.pretraining_set``, its composition split) with
   the profile's shared :class:`~nanoutils.training.TrainConfig` (:func:`pretrain`);
2. **fine-tuning** by :func:`nanoutils.finetuning.finetune` (eq. 5 noise, simulated feeds mixed in with weight
   1, measured feeds weighted ``MEASURED_WEIGHT``, early stopping on validation feeds). The
   **hyper-parameter search** is the same for every deep model: the fine-tuning learning rate over
   the profile's knob ``search_lr`` (:data:`nanoutils.profiles.SETTINGS`), chosen by the eq. 4 loss on the virtual
   validation feeds
   (:func:`run_deep`);
3. **scoring** by :func:`nanoutils.metrics.rejection_error` (through ``finetuning.score``) on the virtual
   test feeds.

**Real data** (the FdL 2021 NF270 feeds): every row, and the further transfer models of
:data:`TRANSFER_ROWS`, by the transfer benchmark (:func:`real_transfer`, :mod:`nanoutils.transfer`): leave one
feed out, each fold calibrated exactly as ``nanoutils calibrate NAME`` does (learned models: the profile's
pre-trained weights, the checkpoints this module's :func:`pretrain` wrote, fine-tuned by eq. 5 with the
profile's learning rate), plus the in-sample calibration; learned rows over the profile's ``transfer_seeds``
seeds. Its headline ((a) "ions seen" folds, (b) all folds, (c) in-sample, mean and spread over seeds) is Table
1's real columns.

The PINN's physics term (:mod:`nanoutils.models._pinn`) uses DSPM-DE with Table 2's Z while pre-training
(the labeller of the simulated set) and with the Z fitted on the same training feeds while fine-tuning on the
virtual split (the real-data transfer fine-tunes as ``nanoutils calibrate`` does, which keeps Table 2's Z).
Mechanistic rows: DSPM-DE with Z fitted by eq. 11 (``fitting.fit``) and the solution-friction model
(``friction.fit``), each fitted on the virtual train + validation feeds. SF has one friction factor per ion, so
it cannot predict a real feed holding an ion absent from its calibration feeds: the transfer benchmark counts
those points as not predicted.
**Training time** is the sum over the virtual runs behind a row: pre-training and every fine-tuning run of the
search as epoch seconds, the eq. 11 fits as wall seconds; the real-data calibrations are timed apart (wall s).
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import env, finetuning, fitting, friction, measurements, metrics, models, pretraining_set, training, transfer
from .measurements import Measurements
from .profiles import Profile, get
from .training_data import TransportData

#: Rows in the paper's order, and their labels.
ROWS = ("neural_ode", "pinn", "resnet", "unet", "dspmde", "sf")
LABELS = {
    "neural_ode": "Physics-constrained neural ODE",
    "pinn": "PINN",
    "resnet": "ResNet",
    "unet": "U-Net",
    "dspmde": "DSPM-DE (fitted Z)",
    "sf": "SF (solution friction)",
    "hybrid_dspmde": "Hybrid (network closure + DSPM-DE)",
    "neural_ode_family_code": "Family neural ODE, code only",
    "neural_ode_family": "Family neural ODE, code + weights",
}
DEEP = ROWS[:4]
#: The membrane-family neural ODE's rows (:func:`run_family`): stage (a) alone, and stages (a) + (b).
FAMILY = ("neural_ode_family_code", "neural_ode_family")
#: The real-data transfer rows (:func:`real_transfer`): names of :data:`nanoutils.calibration.CALIBRATORS`, Table 1's
#: rows first, then the transfer models without a virtual row. A newly registered model is one more name here.
TRANSFER_ROWS = (*ROWS, "hybrid_dspmde", *FAMILY, "dspmde_plus", "sdem")
#: The paper's Table 1: (parameter count, test error in %).
PAPER = {
    "neural_ode": ("1.05 M", 7.1),
    "pinn": ("1.12 M", 9.7),
    "resnet": ("1.23 M", 9.2),
    "unet": ("1.01 M", 10.2),
    "dspmde": ("4", 17.8),
    "sf": ("d + 4", 24.8),
    "hybrid_dspmde": ("–", np.nan),  # not in the paper
    "neural_ode_family_code": ("–", np.nan),
    "neural_ode_family": ("–", np.nan),
}


@dataclass
class Splits:
    """The data every row is trained and scored on: the virtual NF270 split (feeds; train, validation,
    test, and train + validation for the fits), the real NF270 leave-one-feed-out folds (key, train, test;
    chapter 05's), the simulated pre-training split (``{"train", "val", "test"}``) and the real NF270 set
    (``real``, :func:`real_transfer`'s data)."""

    virtual_train: Measurements
    virtual_val: Measurements
    virtual_test: Measurements
    virtual_trainval: Measurements
    real_folds: list[tuple[str, Measurements, Measurements]]
    simulated: dict[str, TransportData]
    real: Measurements


def splits(
    profile: str | Profile = "default",
    seed: int = 0,
    *,
    virtual: Measurements | None = None,
    real: Measurements | None = None,
    simulated: dict[str, TransportData] | None = None,
) -> Splits:
    """Chapter 05's splits: 25 % of the virtual feeds for test, 20 % of the rest for validation (seeded);
    the real FdL 2021 feeds leave-one-out; the profile's cached pre-training set split by composition.
    ``virtual``, ``real`` and ``simulated`` replace the defaults (tests use small ones)."""
    if virtual is None:
        virtual = measurements.load_measurements(
            sorted(glob.glob(str(measurements.MEASURED_DIR / "virtual_nf270_*.csv")))
        )
    real = measurements.load_dataset("nf270_fdl2021") if real is None else real
    simulated = (
        pretraining_set.split(pretraining_set.pretraining_set(profile=profile)) if simulated is None else simulated
    )
    trainval, test = measurements.split_by_feed(virtual, 0.25, seed=seed)
    train, val = measurements.split_by_feed(trainval, 0.2, seed=seed)
    return Splits(train, val, test, trainval, measurements.group_folds(real), simulated, real)


@dataclass
class RowResult:
    """One row before scoring: ``name`` (a key of :data:`LABELS`), ``parameters`` (count, as text), scored
    frames (``metrics.rejection_error`` input; None = not run) on the virtual test and the pooled real
    held-out feeds of ``Splits.real_folds`` (chapter 05; None when not run), training ``seconds``, ``info``
    (chosen settings, fitted values) and a ``note``."""

    name: str
    parameters: str
    virtual: pd.DataFrame | None
    real: pd.DataFrame | None
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def not_run(name: str, reason: str) -> RowResult:
    """A row marked "not run" with its reason."""
    return RowResult(name, "", None, None, float("nan"), note=f"not run: {reason}")


def combined_folds(split: Splits) -> list[tuple[str, Measurements, Measurements]]:
    """The real leave-one-feed-out folds with the virtual training feeds added to each fold's training feeds:
    (key, train, test)."""
    return [
        (
            key,
            Measurements(
                pd.concat([split.virtual_train.table, train.table]),
                {**split.virtual_train.feeds, **train.feeds},
                train.default_sigma_R,
            ),
            test,
        )
        for key, train, test in split.real_folds
    ]


def pretrain(
    name: str,
    simulated: Mapping[str, TransportData],
    profile: str | Profile = "default",
    *,
    seed: int = 0,
    run_dir=None,
    resume: bool | str = False,
    device: str = "auto",
    progress: bool = False,
    stage: str = "pretraining",
    **config: Any,
) -> training.TrainResult:
    """Pre-train model ``name`` (sized for ``profile``, config ``overrides``) on ``simulated["train"]``, best
    epoch on ``simulated["val"]``, with ``TrainConfig.for_profile(profile, stage, seed=seed)`` — chapter 04's
    procedure, so ``run_dir`` = chapter 04's checkpoint with ``resume=True`` loads its finished run
    (``resume`` as :func:`nanoutils.training.train`); ``progress`` shows a progress bar."""
    env.seed_everything(seed)
    model = models.build(name, profile, **config)
    cfg = training.TrainConfig.for_profile(profile, stage, seed=seed)
    return training.train(
        model,
        simulated["train"],
        simulated["val"],
        cfg,
        run_dir=run_dir,
        resume=resume,
        device=device,
        progress=progress,
    )


def checkpoint_dir(name: str, profile: str | Profile = "default") -> Path:
    """Where a profile's pre-trained deep model ``name`` is kept (:func:`pretrain`'s ``run_dir``): chapter 04's run
    for the neural ODE, chapter 06's ``checkpoints/table1/<name>`` for the others; the calibrate path
    (:mod:`nanoutils.calibration`) loads the same ones."""
    ckpt = get(profile).run_dir / "checkpoints"
    return ckpt / "neural_ode" if name == "neural_ode" else ckpt / "table1" / name


def finetune_dir(name: str, profile: str | Profile = "default") -> Path:
    """Where :func:`run_deep` keeps deep model ``name``'s fine-tuning runs for Table 1 (``checkpoints/table1/<name>/
    finetune``): chapter 05 fine-tunes the neural ODE there, so chapter 06 loads that run instead of repeating it."""
    return get(profile).run_dir / "checkpoints" / "table1" / name / "finetune"


def _seconds(result: training.TrainResult) -> float:
    return float(sum(h["seconds"] for h in result.history))


def _fresh(model: models.Model, physics: Mapping[str, float] | None) -> models.Model:
    """A trainable copy of ``model``; a PINN's physics term pointed at the membrane ``physics`` (Z in SI)."""
    if isinstance(model, models.PINN) and physics is not None:
        return models.clone(model, membrane={k: float(v) for k, v in physics.items()})
    return models.clone(model)


def _kept_checkpoint(result: training.TrainResult, validated: bool) -> str | None:
    """The checkpoint holding the weights a run returned: ``best.pt`` with validation feeds, else ``last.pt``."""
    return None if result.run_dir is None else str(result.run_dir / ("best.pt" if validated else "last.pt"))


def finetune_run(
    model: models.Model,
    train: Measurements,
    val: Measurements | None,
    split: Splits,
    profile: str | Profile = "default",
    *,
    seed: int = 0,
    lr: float | None = None,
    noise: bool = True,
    run_dir: str | os.PathLike | None = None,
    resume: bool | str = False,
    device: str = "auto",
) -> training.TrainResult:
    """One fine-tuning run as every deep row makes it: :func:`nanoutils.finetuning.finetune` of ``model`` (in
    place) on ``train`` (early stopping on ``val``; None: fixed epochs, last kept) with the profile's loop
    (``lr`` replaces its learning rate), eq. 5 noise unless ``noise=False``, and the split's simulated training
    feeds mixed in; checkpoints in ``run_dir``, ``resume`` as :func:`nanoutils.training.train`. The model comes
    back on the CPU."""
    P = get(profile)
    config = finetuning.finetune_config(P, seed=seed, **({} if lr is None else {"lr": lr}))
    result = finetuning.finetune(
        model,
        train,
        val,
        profile=P,
        simulated=split.simulated["train"],
        noise=noise,
        config=config,
        run_dir=run_dir,
        resume=resume,
        device=device,
    )
    result.model.cpu()
    return result


def run_deep(
    name: str,
    pretrained: training.TrainResult,
    split: Splits,
    profile: str | Profile = "default",
    *,
    seed: int = 0,
    lrs: Sequence[float] | None = None,
    physics: Mapping[str, Mapping[str, float]] | None = None,
    device: str = "auto",
    run_dir: str | os.PathLike | None = None,
    resume: bool | str = False,
    tuned: Any = None,
    real: bool = True,
) -> RowResult:
    """Fine-tune and score a pre-trained deep model as the module docstring says; with ``real`` also fine-tune
    on the two training feeds of each of ``split.real_folds`` with the chosen learning rate (fixed epochs, no
    validation feeds) and score the held-out feed (chapter 05; chapter 06 scores the real data by
    :func:`real_transfer` instead). ``lrs``: the search
    (default: the profile's knob ``search_lr``); ``physics``: fitted Z per training set (``"virtual"`` and each
    fold key) for a PINN's physics term (e.g. from :func:`run_dspmde`). ``pretrained.model`` is not modified.
    ``tuned``: the settings of an Optuna study (:func:`nanoutils.tuning.best_settings`; ``pretrained`` made by
    :func:`pretrain` with ``**tuned.config``) replace the search by their learning rate and eq. 5 noise.

    With ``run_dir`` every fine-tuning run keeps its checkpoints in ``run_dir/<set>_lr<lr>[_nonoise]/`` (``<set>``:
    ``virtual`` or the real test feed), ``resume`` continues or loads them as :func:`nanoutils.training.train`
    says (``"if_compatible"``: a run made with other settings, data or pre-trained weights is redone, with a
    warning), ``info["checkpoints"]`` maps ``"virtual"`` and each fold key to the run kept for scoring and
    ``info["best epoch"]`` to its kept epoch."""
    P = get(profile)
    base = pretrained.model.cpu()
    if tuned is not None:
        mismatch = {k: v for k, v in tuned.config.items() if getattr(base.config, k) != v}
        if tuned.model != name or mismatch:
            raise ValueError(f"tuned settings of {tuned.model} {tuned.config} do not match the pre-trained {name}")
    lrs = (tuned.lr,) if tuned is not None else tuple(P.settings.search_lr if lrs is None else lrs)
    noise = True if tuned is None else tuned.noise
    physics = physics or {}
    runs: list[training.TrainResult] = []

    def tune(train: Measurements, val: Measurements | None, lr: float, key: str) -> training.TrainResult:
        leaf = f"{key.split('/')[-1]}_lr{lr:g}" + ("" if noise else "_nonoise")  # eq. 5 noise is in no fingerprint
        where = None if run_dir is None else Path(run_dir) / leaf
        res = finetune_run(
            _fresh(base, physics.get(key)),
            train,
            val,
            split,
            P,
            seed=seed,
            lr=lr,
            noise=noise,
            run_dir=where,
            resume=resume if where is not None else False,
            device=device,
        )
        runs.append(res)
        return res

    trials = {lr: tune(split.virtual_train, split.virtual_val, lr, "virtual") for lr in lrs}
    best_lr = min(lrs, key=lambda lr: trials[lr].best_loss)
    virtual = finetuning.score(trials[best_lr].model, split.virtual_test)[1]
    folds = {key: tune(train, None, best_lr, key) for key, train, _ in split.real_folds} if real else {}
    scored = [finetuning.score(folds[key].model, test)[1] for key, _, test in split.real_folds if key in folds]
    kept = {"virtual": trials[best_lr], **folds}
    info: dict[str, Any] = {
        "lr": best_lr,
        "validation loss per lr": {lr: r.best_loss for lr, r in trials.items()},
        "pre-training s": _seconds(pretrained),
        "fine-tuning s": sum(_seconds(r) for r in runs),
        "history": {key: r.history for key, r in kept.items()},
        "pre-training history": pretrained.history,
        "checkpoints": {key: _kept_checkpoint(r, validated=key == "virtual") for key, r in kept.items()},
        "best epoch": {key: r.best_epoch for key, r in kept.items()},
    }
    return RowResult(
        name,
        f"{models.n_parameters(base):,}",
        virtual,
        pd.concat(scored, ignore_index=True) if scored else None,
        info["pre-training s"] + info["fine-tuning s"],
        info,
    )


def run_dspmde(
    split: Splits, profile: str | Profile = "default", *, seed: int = 0, real: bool = True
) -> tuple[RowResult, dict[str, dict[str, float]]]:
    """DSPM-DE with Z fitted by eq. 11 (budget: the profile's knob ``baseline_fit``; from Table 2) on the virtual
    train + validation feeds and, with ``real`` (chapter 05), on each real fold's training feeds; the row and the
    fitted Z per training set."""
    budget = get(profile).settings.baseline_fit
    sets = {"virtual": split.virtual_trainval, **({key: train for key, train, _ in split.real_folds} if real else {})}
    fits = {
        key: fitting.fit(meas, start=fitting.PAPER_TABLE2, seed=seed, with_uncertainty=False, **budget)
        for key, meas in sets.items()
    }
    virtual = fitting.predictions(split.virtual_test, fits["virtual"].membrane)
    scored = [fitting.predictions(test, fits[key].membrane) for key, _, test in split.real_folds if key in fits]
    params = {key: dict(f.params) for key, f in fits.items()}
    return RowResult(
        "dspmde",
        str(len(fitting.PARAMETERS)),
        virtual,
        pd.concat(scored, ignore_index=True) if scored else None,
        sum(f.wall_s for f in fits.values()),
        {"Z": params},
    ), params


def run_sf(split: Splits, profile: str | Profile = "default", *, seed: int = 0) -> RowResult:
    """The solution-friction model fitted (budget: the profile's knob ``sf_fit``) on the virtual train + validation
    feeds and scored on the virtual test feeds (its real-data row: :func:`real_transfer`)."""
    fit_v = friction.fit(split.virtual_trainval, seed=seed, **get(profile).settings.sf_fit)
    return RowResult(
        "sf",
        f"d + 4 = {fit_v.n_params}",
        fitting.predictions(split.virtual_test, fit_v.model),
        None,
        fit_v.wall_s,
        {"virtual fit": fit_v},
    )


def transfer_seeds(name: str, profile: str | Profile = "default", seed: int = 0, n: int | None = None) -> list[int]:
    """The seeds :func:`real_transfer` calibrates registry model ``name`` with: ``n`` (default: the profile's knob
    ``transfer_seeds``) consecutive seeds from ``seed`` for a learned model (its fine-tuning is stochastic),
    ``[seed]`` for a mechanistic one (one eq. 11 fit from the paper's Table 2)."""
    from . import calibration

    n = get(profile).settings.transfer_seeds if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of transfer seeds must be a whole number ≥ 1, got {n!r}")
    return list(range(seed, seed + n)) if calibration.calibrator(name).kind == "learned" else [seed]


def real_transfer(
    meas: Measurements,
    names: Sequence[str] = TRANSFER_ROWS,
    profile: str | Profile = "default",
    *,
    seed: int = 0,
    n_seeds: int | None = None,
    in_sample_seeds: int | None = None,
) -> transfer.Benchmark:
    """Table 1's real-data evaluation: :func:`nanoutils.transfer.benchmark` of the registry models ``names`` on
    ``meas`` (leave one feed out, every fold calibrated as ``nanoutils calibrate NAME --profile`` does, and the
    in-sample calibration), each with its :func:`transfer_seeds` (``n_seeds``: their number for a learned model,
    default the profile's knob ``transfer_seeds``); the in-sample calibration with the first ``in_sample_seeds``
    of them (default: the knob ``transfer_in_sample_seeds``). Learned models start from the profile's pre-trained
    checkpoints (:func:`pretrain`'s, chapters 04 and 06), pre-trained first if absent. Mechanistic fits are kept in
    ``runs/<profile>/calibrations/`` and reused (chapter 02 fits the same folds; :func:`transfer.registry_rows`)."""
    P = get(profile)
    cap = P.settings.transfer_in_sample_seeds if in_sample_seeds is None else in_sample_seeds
    seeds = {name: transfer_seeds(name, P, seed, n_seeds) for name in names}
    return transfer.benchmark(
        meas,
        transfer.registry_rows(names, profile=P, cache=P.subdir("calibrations")),
        seeds=seeds,
        in_sample={name: s[:cap] for name, s in seeds.items()},
    )


def best_by_kind(real: transfer.Benchmark, names: Sequence[str] = TRANSFER_ROWS) -> dict[str, str | None]:
    """The best mechanistic and the best learned registry model of ``names`` in ``real`` (lowest mean over all
    transfer folds among those that predicted every point, :meth:`nanoutils.transfer.Benchmark.best`; None where
    none did): ``{"mechanistic": …, "learned": …}``."""
    from . import calibration

    kinds = {n: calibration.calibrator(n).kind for n in names}
    return {kind: real.best([n for n in names if kinds[n] == kind]) for kind in ("mechanistic", "learned")}


def run_hybrid(split: Splits, profile: str | Profile = "default", *, seed: int = 0) -> RowResult:
    """Table 1's virtual row of the hybrid model (:func:`nanoutils.hybrid.fit`: a dspmde_plus fit, then the closure
    network) trained on the virtual training feeds with early stopping on the validation feeds, scored like the deep
    models (:func:`nanoutils.finetuning.score`); parameters: network weights + fitted parameters. Its real-data
    columns are :func:`real_transfer`'s (``hybrid_dspmde`` in :data:`TRANSFER_ROWS`)."""
    from . import hybrid

    res, base = hybrid.fit(split.virtual_train, val_meas=split.virtual_val, profile=profile, seed=seed)
    return RowResult(
        "hybrid_dspmde",
        f"{models.n_parameters(res.model):,} + {len(base.names)}",
        finetuning.score(res.model, split.virtual_test)[1],
        None,
        _seconds(res) + base.wall_s,
        {"best epoch": res.best_epoch},
    )


def run_family(split: Splits, profile: str | Profile = "default", *, seed: int = 0) -> list[RowResult]:
    """Table 1's virtual rows of the membrane-family neural ODE (:data:`FAMILY`): the network pre-trained on the
    family set (:func:`nanoutils.calibration.pretrained_family`, chapter 04) calibrated as ``nanoutils calibrate
    NAME`` does (:mod:`nanoutils.membrane_calibration`: the code alone, or the code and then the weights) on the
    virtual training + validation feeds — the stages keep their last epoch, so like the DSPM-DE row it needs no
    validation feeds — and scored on the virtual test feeds. Parameters: weights + code entries; seconds: the
    family pre-training plus the calibration (wall). Their real-data columns are :func:`real_transfer`'s."""
    from . import calibration, membrane_family

    net = calibration.pretrained_family("neural_ode", profile)
    rows = []
    for name in FAMILY:
        t0 = time.perf_counter()
        fitted = calibration.calibrate(name, split.virtual_trainval, profile=profile, seeds=[seed])
        rows.append(
            RowResult(
                name,
                f"{models.n_parameters(net.result.model) - membrane_family.N_CODE:,} + {membrane_family.N_CODE}",
                finetuning.score(fitted.members[0], split.virtual_test)[1],
                None,
                _seconds(net.result) + time.perf_counter() - t0,
                {"stages": fitted.info[0]["stages"]},
            )
        )
    return rows


def _scored(frame: pd.DataFrame | None, n_boot: int, seed: int) -> tuple[metrics.Score | None, int]:
    """The score of the converged rows and the number of unconverged rows left out."""
    if frame is None:
        return None, 0
    ok = frame["converged"].to_numpy(bool) if "converged" in frame else np.ones(len(frame), bool)
    return metrics.rejection_error(frame[ok], n_boot=n_boot, seed=seed), int((~ok).sum())


#: Table 1's real-data columns: the transfer headline's (mean over seeds, its spread) in the table's words.
REAL_COLUMNS = {
    "ions seen": "real ions seen (pp)",
    "all folds": "real all folds (pp)",
    "in-sample": "real in-sample (pp)",
}


def label(name: str) -> str:
    """A row's label in Table 1: :data:`LABELS`, else the registry name."""
    return LABELS.get(name, name)


def _real_columns(head: pd.Series | None) -> tuple[dict[str, Any], list[str]]:
    """The real columns of one Table 1 row from its transfer headline row (None: not run), and its notes."""
    if head is None:
        return {**{c: np.nan for c in REAL_COLUMNS.values()}, "real seeds": ""}, []
    rec: dict[str, Any] = {}
    for key, col in REAL_COLUMNS.items():
        rec[col], rec[col.replace("(pp)", "spread (pp)")] = head[f"{key} (pp)"], head[f"{key} spread"]
    n = {k: int(head[k]) for k in ("seeds", "in-sample seeds", "NaN points", "folds not predicted", "folds")}
    rec["real seeds"] = f"{n['seeds']} (in-sample {n['in-sample seeds']})"
    note = (
        f"real: {n['NaN points']} points not predicted over all seeds and folds, "
        f"{n['folds not predicted']} of {n['folds']} folds wholly"
    )
    return rec, [note] if n["NaN points"] else []


def _check_no_fold_scores(rows: Sequence[RowResult]) -> None:
    """Table 1's real data are :func:`real_transfer`'s: refuse rows carrying chapter 05's pooled real folds."""
    stale = [r.name for r in rows if r.real is not None]
    if stale:
        raise ValueError(
            f"rows {stale} carry real-fold scores of chapter 05 (run them with real=False); "
            "Table 1's real data are the transfer benchmark's"
        )


def table1(
    rows: Sequence[RowResult], real: transfer.Benchmark | None = None, *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Table 1: one row per entry of :data:`ROWS` in the paper's order (missing ones "not run"), then the other
    models of the real-data benchmark ``real`` (:func:`real_transfer`). Columns: parameters; virtual test error
    (pp) with its 95 % feed-bootstrap CI and point count; the real transfer headline (:data:`REAL_COLUMNS`: mean
    over "ions seen" folds, over all folds, in-sample, each the mean over seeds and its spread, the sample std
    over seeds, NaN from one seed; the seeds); the virtual error per study (pp); training time on the virtual
    split (s); the real calibrations' wall time (s); the paper's parameter count and test error (%); a note."""
    by_name = {r.name: r for r in rows}
    unknown = sorted(set(by_name) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown Table 1 row(s) {unknown}; known: {', '.join(LABELS)}")
    _check_no_fold_scores(rows)
    head = real.headline() if real is not None else pd.DataFrame()
    out = []
    extra = [n for n in by_name if n not in ROWS]
    for name in [*ROWS, *extra, *(n for n in head.index if n not in ROWS and n not in extra)]:
        r = by_name.get(name) or not_run(name, "no result given" if name in ROWS else "real-data transfer only")
        rec: dict[str, Any] = {"model": label(name), "parameters": r.parameters}
        notes = [r.note] if r.note else []
        s, n_bad = _scored(r.virtual, n_boot, seed)
        rec["virtual test error (pp)"] = s.value if s else np.nan
        rec["virtual CI low (pp)"], rec["virtual CI high (pp)"] = s.ci if s and s.n_feeds > 1 else (np.nan, np.nan)
        rec["virtual points"] = s.n_points if s else 0
        rec.update({f"error {study} (pp)": v for study, v in (s.per_study.items() if s else ())})
        if n_bad:
            notes.append(f"{n_bad} unconverged virtual points left out")
        cols, real_notes = _real_columns(head.loc[name] if name in head.index else None)
        rec.update(cols)
        notes += real_notes
        rec["training time (s)"] = r.seconds
        rec["real calibration time (s)"] = head.loc[name, "calibration (s)"] if name in head.index else np.nan
        rec["paper parameters"], rec["paper test error (%)"] = PAPER.get(name, ("", np.nan))
        rec["note"] = "; ".join(notes)
        out.append(rec)
    frame = pd.DataFrame(out).set_index("model")
    tail = ["training time (s)", "real calibration time (s)", "paper parameters", "paper test error (%)", "note"]
    studies = sorted(c for c in frame.columns if c.startswith("error "))
    first = [c for c in frame.columns if not c.startswith("error ") and c not in tail]
    return frame[first + studies + tail]


#: What :func:`save_results` keeps of each row's ``info`` (JSON-serialisable entries).
SAVED_INFO = ("lr", "validation loss per lr", "checkpoints", "history", "pre-training history", "Z")
PREDICTIONS_CSV, RUNS_JSON, FOLDS_CSV = "table1_predictions.csv", "table1_runs.json", "transfer_folds.csv"
#: Where :func:`save_results` puts the real-data transfer's calibrated models, under the results directory.
TRANSFER_DIR = "transfer"
_COLUMNS = ["feed_id", "study", "ion", "Jv_um_s", "R_meas", "R_pred"]


def save_results(
    rows: Sequence[RowResult],
    directory: str | os.PathLike,
    real: transfer.Benchmark | None = None,
    *,
    seed: int = 0,
) -> list[Path]:
    """Write what the figures chapter needs of the Table 1 runs to ``directory``: every scored point
    (``table1_predictions.csv``: model, split = virtual | real | real in-sample, seed, feed_id, study, ion,
    Jv_um_s, R_meas, R_pred; the virtual rows were run with ``seed``, the real ones are ``real``'s points), the
    transfer folds (``transfer_folds.csv``), every model ``real`` calibrated (``transfer/``, in its registry
    member format) and per row the chosen settings, checkpoints, training histories, fitted Z and the transfer
    models' files by fold and seed (``table1_runs.json``, key ``"transfer models"``)."""
    from . import calibration

    _check_no_fold_scores(rows)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = [
        f.assign(
            model=r.name, split="virtual", seed=seed, Jv_um_s=f["Jv_um_s"] if "Jv_um_s" in f else f["Jv_m_s"] * 1e6
        )[["model", "split", "seed", *_COLUMNS]]
        for r in rows
        if (f := r.virtual) is not None
    ]
    info: dict[str, dict[str, Any]] = {r.name: {k: r.info[k] for k in SAVED_INFO if k in r.info} for r in rows}
    paths = [directory / PREDICTIONS_CSV, directory / RUNS_JSON]
    if real is not None:
        pts = real.points.assign(
            split=real.points["split"].map({"transfer": "real", transfer.IN_SAMPLE: "real in-sample"})
        )
        parts.append(pts[["model", "split", "seed", *_COLUMNS]])
        real.folds.to_csv(directory / FOLDS_CSV, index=False)
        paths.append(directory / FOLDS_CSV)
        (directory / TRANSFER_DIR).mkdir(exist_ok=True)
        for (name, s, fold), model in real.models.items():
            fmt = calibration.calibrator(name).member
            path = directory / TRANSFER_DIR / f"{name}__{fold.replace('/', '_')}__seed{s}{fmt.suffix}"
            fmt.save(model, path)
            info.setdefault(name, {}).setdefault("transfer models", {}).setdefault(fold, {})[str(s)] = str(path)
    pd.concat(parts, ignore_index=True).to_csv(paths[0], index=False)
    paths[1].write_text(json.dumps(info, indent=1, default=float))
    return paths


def load_transfer_model(runs: Mapping[str, Any], name: str, fold: str, seed: int = 0) -> Any:
    """The model of row ``name`` that the real-data transfer calibrated for ``fold`` (a held-out feed key or
    ``"in-sample"``) with ``seed``, from :func:`load_results`' run information."""
    from . import calibration

    try:
        path = runs[name]["transfer models"][fold][str(seed)]
    except KeyError:
        raise KeyError(
            f"no transfer model of {name!r} for fold {fold!r}, seed {seed} in chapter 06's results"
        ) from None
    return calibration.calibrator(name).member.load(Path(path))


def load_results(directory: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """What :func:`save_results` wrote: the scored points and the per-row run information."""
    directory = Path(directory)
    missing = [name for name in (PREDICTIONS_CSV, RUNS_JSON) if not (directory / name).exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not in {directory}: run chapter 06 (Table 1) first")
    return pd.read_csv(directory / PREDICTIONS_CSV), json.loads((directory / RUNS_JSON).read_text())
