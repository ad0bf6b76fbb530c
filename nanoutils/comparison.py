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
   test feeds, and leave-one-feed-out on the three real NF270 feeds (``measurements.group_folds``: train on two with
   the chosen learning rate and the fixed epoch count, no validation feeds; test on the third).

The PINN's physics term (:mod:`nanoutils.models._pinn`) uses DSPM-DE with Table 2's Z while pre-training
(the labeller of the simulated set) and with the Z fitted on the same training feeds while fine-tuning.
Mechanistic rows: DSPM-DE with Z fitted by eq. 11 (``fitting.fit``) and the solution-friction model
(``friction.fit``), each fitted on the same training feeds (virtual: train + validation feeds; real: each
fold's two feeds). SF has one friction factor per ion, so it cannot predict an ion absent from its
training feeds: such test feeds are left out of its score and counted in the row's note.
**Training time** is the sum over every run behind a row: pre-training, every fine-tuning run (search
trials and real folds) as epoch seconds; the eq. 11 fits as wall seconds.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import env, finetuning, fitting, friction, measurements, metrics, models, pretraining_set, training
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
}
DEEP = ROWS[:4]
#: The paper's Table 1: (parameter count, test error in %).
PAPER = {
    "neural_ode": ("1.05 M", 7.1),
    "pinn": ("1.12 M", 9.7),
    "resnet": ("1.23 M", 9.2),
    "unet": ("1.01 M", 10.2),
    "dspmde": ("4", 17.8),
    "sf": ("d + 4", 24.8),
    "hybrid_dspmde": ("–", np.nan),  # not in the paper
}


@dataclass
class Splits:
    """The data every row is trained and scored on: the virtual NF270 split (feeds; train, validation,
    test, and train + validation for the fits), the real NF270 leave-one-feed-out folds (key, train, test)
    and the simulated pre-training split (``{"train", "val", "test"}``)."""

    virtual_train: Measurements
    virtual_val: Measurements
    virtual_test: Measurements
    virtual_trainval: Measurements
    real_folds: list[tuple[str, Measurements, Measurements]]
    simulated: dict[str, TransportData]


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
    return Splits(train, val, test, trainval, measurements.group_folds(real), simulated)


@dataclass
class RowResult:
    """One row before scoring: ``name`` (a key of :data:`LABELS`), ``parameters`` (count, as text), scored
    frames (``metrics.rejection_error`` input; None = not run) on the virtual test and the pooled real
    held-out feeds, training ``seconds``, ``info`` (chosen settings, fitted values) and a ``note``."""

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
    **config: Any,
) -> training.TrainResult:
    """Pre-train model ``name`` (sized for ``profile``, config ``overrides``) on ``simulated["train"]``, best
    epoch on ``simulated["val"]``, with ``TrainConfig.for_profile(profile, seed=seed)`` — chapter 04's
    procedure, so ``run_dir`` = chapter 04's checkpoint with ``resume=True`` loads its finished run
    (``resume`` as :func:`nanoutils.training.train`); ``progress`` shows a progress bar."""
    env.seed_everything(seed)
    model = models.build(name, profile, **config)
    cfg = training.TrainConfig.for_profile(profile, seed=seed)
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
) -> RowResult:
    """Fine-tune and score a pre-trained deep model as the module docstring says. ``lrs``: the search
    (default: the profile's knob ``search_lr``); ``physics``: fitted Z per training set (``"virtual"`` and each
    fold key) for a PINN's physics term (e.g. from :func:`run_dspmde`). ``pretrained.model`` is not modified.
    ``tuned``: the settings of an Optuna study (:func:`nanoutils.tuning.best_settings`; ``pretrained`` made by
    :func:`pretrain` with ``**tuned.config``) replace the search by their learning rate and eq. 5 noise.

    With ``run_dir`` every fine-tuning run keeps its checkpoints in ``run_dir/<set>_lr<lr>/`` (``<set>``:
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
        where = None if run_dir is None else Path(run_dir) / f"{key.split('/')[-1]}_lr{lr:g}"
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
    folds = {key: tune(train, None, best_lr, key) for key, train, _ in split.real_folds}
    real = [finetuning.score(folds[key].model, test)[1] for key, _, test in split.real_folds]
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
        pd.concat(real, ignore_index=True),
        info["pre-training s"] + info["fine-tuning s"],
        info,
    )


def run_dspmde(
    split: Splits, profile: str | Profile = "default", *, seed: int = 0
) -> tuple[RowResult, dict[str, dict[str, float]]]:
    """DSPM-DE with Z fitted by eq. 11 (budget: the profile's knob ``baseline_fit``; from Table 2) on the virtual
    train +
    validation feeds and on each real fold's training feeds; the row and the fitted Z per training set."""
    budget = get(profile).settings.baseline_fit
    sets = {"virtual": split.virtual_trainval, **{key: train for key, train, _ in split.real_folds}}
    fits = {
        key: fitting.fit(meas, start=fitting.PAPER_TABLE2, seed=seed, with_uncertainty=False, **budget)
        for key, meas in sets.items()
    }
    virtual = fitting.predictions(split.virtual_test, fits["virtual"].membrane)
    real = pd.concat(
        [fitting.predictions(test, fits[key].membrane) for key, _, test in split.real_folds], ignore_index=True
    )
    params = {key: dict(f.params) for key, f in fits.items()}
    return RowResult(
        "dspmde", str(len(fitting.PARAMETERS)), virtual, real, sum(f.wall_s for f in fits.values()), {"Z": params}
    ), params


def run_sf(split: Splits, profile: str | Profile = "default", *, seed: int = 0) -> RowResult:
    """The solution-friction model fitted (budget: the profile's knob ``sf_fit``) on the same training feeds as
    :func:`run_dspmde`; real folds whose test feed has an ion without a fitted friction factor are skipped."""
    budget = get(profile).settings.sf_fit
    fit_v = friction.fit(split.virtual_trainval, seed=seed, **budget)
    seconds, real, skipped = fit_v.wall_s, [], []
    for key, train, test in split.real_folds:
        fit_r = friction.fit(train, seed=seed, **budget)
        seconds += fit_r.wall_s
        unseen = sorted(set(test.arrays().species) - set(fit_r.model.species))
        if unseen:
            skipped.append(f"{key} (no friction factor for {', '.join(unseen)})")
        else:
            real.append(fitting.predictions(test, fit_r.model))
    note = f"real folds not scorable: {'; '.join(skipped)}" if skipped else ""
    return RowResult(
        "sf",
        f"d + 4 = {fit_v.n_params}",
        fitting.predictions(split.virtual_test, fit_v.model),
        pd.concat(real, ignore_index=True) if real else None,
        seconds,
        {"virtual fit": fit_v},
        note,
    )


def run_hybrid(split: Splits, profile: str | Profile = "default", *, seed: int = 0, real: bool = True) -> RowResult:
    """The hybrid model (:func:`nanoutils.hybrid.fit`: a dspmde_plus fit, then the closure network) trained on the
    virtual training feeds (early stopping on the validation feeds) and, with ``real``, on each real fold's training
    feeds, scored like the deep models (:func:`nanoutils.finetuning.score`); parameters: network weights + fitted
    parameters."""
    from . import hybrid

    res_v, base_v = hybrid.fit(split.virtual_train, val_meas=split.virtual_val, profile=profile, seed=seed)
    seconds, scored = _seconds(res_v) + base_v.wall_s, []
    for _, train, test in split.real_folds if real else ():
        res_r, base_r = hybrid.fit(train, profile=profile, seed=seed)
        seconds += _seconds(res_r) + base_r.wall_s
        scored.append(finetuning.score(res_r.model, test)[1])
    return RowResult(
        "hybrid_dspmde",
        f"{models.n_parameters(res_v.model):,} + {len(base_v.names)}",
        finetuning.score(res_v.model, split.virtual_test)[1],
        pd.concat(scored, ignore_index=True) if scored else None,
        seconds,
        {"best epoch": res_v.best_epoch},
    )


def _scored(frame: pd.DataFrame | None, n_boot: int, seed: int) -> tuple[metrics.Score | None, int]:
    """The score of the converged rows and the number of unconverged rows left out."""
    if frame is None:
        return None, 0
    ok = frame["converged"].to_numpy(bool) if "converged" in frame else np.ones(len(frame), bool)
    return metrics.rejection_error(frame[ok], n_boot=n_boot, seed=seed), int((~ok).sum())


def table1(rows: Sequence[RowResult], *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Table 1: one row per entry of :data:`ROWS` in the paper's order (missing ones "not run"), then any other
    row of :data:`LABELS` given (e.g. ``hybrid_dspmde``, :func:`run_hybrid`); columns:
    parameters, virtual and real test error (pp) with their 95 % feed-bootstrap CI (NaN from a single feed)
    and point counts, the error per study (pp), training time (s), the paper's parameter count and test error
    (%), and a note."""
    by_name = {r.name: r for r in rows}
    unknown = sorted(set(by_name) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown Table 1 row(s) {unknown}; known: {', '.join(LABELS)}")
    out = []
    for name in (*ROWS, *(n for n in by_name if n not in ROWS)):
        r = by_name.get(name) or not_run(name, "no result given")
        rec: dict[str, Any] = {"model": LABELS[name], "parameters": r.parameters}
        notes = [r.note] if r.note else []
        for split, frame in (("virtual", r.virtual), ("real", r.real)):
            s, n_bad = _scored(frame, n_boot, seed)
            rec[f"{split} test error (pp)"] = s.value if s else np.nan
            ci = s.ci if s and s.n_feeds > 1 else (np.nan, np.nan)
            rec[f"{split} CI low (pp)"], rec[f"{split} CI high (pp)"] = ci
            rec[f"{split} points"] = s.n_points if s else 0
            rec.update({f"error {study} (pp)": v for study, v in (s.per_study.items() if s else ())})
            if n_bad:
                notes.append(f"{n_bad} unconverged {split} points left out")
        rec["training time (s)"] = r.seconds
        rec["paper parameters"], rec["paper test error (%)"] = PAPER[name]
        rec["note"] = "; ".join(notes)
        out.append(rec)
    frame = pd.DataFrame(out).set_index("model")
    studies = sorted(c for c in frame.columns if c.startswith("error "))
    first = [
        c
        for c in frame.columns
        if not c.startswith("error ")
        and c not in ("training time (s)", "paper parameters", "paper test error (%)", "note")
    ]
    return frame[first + studies + ["training time (s)", "paper parameters", "paper test error (%)", "note"]]


#: What :func:`save_results` keeps of each row's ``info`` (JSON-serialisable entries).
SAVED_INFO = ("lr", "validation loss per lr", "checkpoints", "history", "pre-training history", "Z")
PREDICTIONS_CSV, RUNS_JSON = "table1_predictions.csv", "table1_runs.json"


def save_results(rows: Sequence[RowResult], directory: str | os.PathLike) -> list[Path]:
    """Write what the figures chapter needs of the Table 1 runs to ``directory``: every scored point
    (``table1_predictions.csv``: model, split = virtual | real, feed_id, study, ion, Jv_um_s, R_meas, R_pred)
    and per row the chosen settings, checkpoints, training histories and fitted Z (``table1_runs.json``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    for r in rows:
        for split, frame in (("virtual", r.virtual), ("real", r.real)):
            if frame is None:
                continue
            f = frame.assign(Jv_um_s=frame["Jv_um_s"] if "Jv_um_s" in frame else frame["Jv_m_s"] * 1e6)
            parts.append(
                f[["feed_id", "study", "ion", "Jv_um_s", "R_meas", "R_pred"]].assign(model=r.name, split=split)
            )
    predictions = pd.concat(parts, ignore_index=True)
    predictions = predictions[["model", "split", *predictions.columns[:-2]]]
    paths = [directory / PREDICTIONS_CSV, directory / RUNS_JSON]
    predictions.to_csv(paths[0], index=False)
    info = {r.name: {k: r.info[k] for k in SAVED_INFO if k in r.info} for r in rows}
    paths[1].write_text(json.dumps(info, indent=1, default=float))
    return paths


def load_results(directory: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """What :func:`save_results` wrote: the scored points and the per-row run information."""
    directory = Path(directory)
    missing = [name for name in (PREDICTIONS_CSV, RUNS_JSON) if not (directory / name).exists()]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)} not in {directory}: run chapter 06 (Table 1) first")
    return pd.read_csv(directory / PREDICTIONS_CSV), json.loads((directory / RUNS_JSON).read_text())
