"""Hyper-parameter search for the deep models of Table 1 with Optuna, one study per model and profile.

A trial pre-trains a model (:func:`nanoutils.comparison.pretrain`) with a suggested architecture and
fine-tunes it (:func:`nanoutils.comparison.finetune_run`, eq. 5) on the VIRTUAL training feeds of
:func:`nanoutils.comparison.splits`; its value is the best eq. 4 loss on the VIRTUAL validation feeds (the
test feeds are never seen). The search space, the same for every model:

- ``lr``: the fine-tuning learning rate, log-uniform in :data:`LR_RANGE`;
- the depth of :data:`DEPTH` (neural ODE ``depth``, ResNet and PINN ``blocks``, U-Net ``levels``);
- ``size``: the parameter count as a fraction of the profile's neural ODE's, uniform in ±:data:`SIZE`; the
  width is the one nearest to it at that depth (:func:`sized_config`; a trial outside ±:data:`BAND` is
  pruned, so every compared model stays in the band Table 1 matches them in);
- ``noise``: eq. 5 noise on the measured targets, or their means only.

Every model gets the same budget: ``trials`` trials, counted over all workers (pruned ones included).
A PINN's physics term uses Table 2's Z here (Table 1 uses the Z fitted on the same feeds).

Storage and scaling out. By default a study lives in an Optuna journal file,
``runs/<profile>/tuning/studies.log``, so one machine needs no server. ``storage`` (``--storage``) takes
another journal file path (several processes on one machine, or machines sharing a file system with
working file locks, e.g. ``/shared/tuning.log``) or a database URL (``sqlite:///tuning.db``;
``postgresql://user@host/db`` or ``mysql+pymysql://…`` for workers on many machines). Workers share a
study by pointing at the same storage and study name: start the same command on every worker,

    python -m nanoutils tune --model resnet --trials 20 --storage postgresql://user@db/optuna --study resnet

and each one runs trials until the study holds ``trials`` of them. :func:`best_settings` reads the best
trial; :func:`nanoutils.comparison.run_deep` takes it (``tuned=``) for Table 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import comparison, models
from .profiles import Profile, get

#: Fine-tuning learning rates searched (log-uniform).
LR_RANGE = (1e-4, 1e-2)
#: The depth knob of each model's config and its choices.
DEPTH = {
    "neural_ode": ("depth", (3, 4, 5, 6)),
    "resnet": ("blocks", (1, 2, 3, 4)),
    "pinn": ("blocks", (1, 2, 3, 4)),
    "unet": ("levels", (1, 2, 3)),
}
#: Parameter counts allowed, relative to the profile's neural ODE's: ±BAND (Table 1's matching).
BAND = 0.15
#: Parameter counts suggested: ±SIZE of the neural ODE's (inside BAND, leaving room for width steps).
SIZE = 0.12
#: Journal file of the default storage, under ``runs/<profile>/tuning/``.
JOURNAL = "studies.log"


class TuningError(ValueError):
    """Bad input to a search (unknown model, no finished trial, bad trial count); names the value."""


@dataclass(frozen=True)
class Settings:
    """The settings of one trial: ``model`` name, fine-tuning ``lr``, model ``config`` overrides (width and
    depth), ``noise`` (eq. 5), its validation loss ``value`` (VIRTUAL validation feeds) and parameter count."""

    model: str
    lr: float
    config: dict[str, Any] = field(default_factory=dict)
    noise: bool = True
    value: float = float("nan")
    n_parameters: int = 0


def storage(url: str | os.PathLike | None = None, profile: str | Profile = "default"):
    """The Optuna storage of ``url``: a database URL (it contains ``://``) or a journal file path
    (default ``runs/<profile>/tuning/studies.log``)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if url is not None and "://" in str(url):
        return optuna.storages.RDBStorage(str(url))
    path = Path(url) if url is not None else get(profile).subdir("tuning") / JOURNAL
    if not path.parent.is_dir():
        raise TuningError(f"storage {path}: directory {path.parent} does not exist")
    return JournalStorage(JournalFileBackend(str(path)))


def study_name(model: str, profile: str | Profile = "default") -> str:
    """The default study name: ``<model>-<profile>``."""
    return f"{model}-{get(profile).name}"


def load_study(
    model: str,
    profile: str | Profile = "default",
    url: str | os.PathLike | None = None,
    name: str | None = None,
    sampler_seed: int | None = None,
):
    """The study ``name`` (default :func:`study_name`) in ``url`` (see :func:`storage`), created if absent;
    ``sampler_seed`` seeds the TPE sampler (leave None when several workers share the study, or their first
    suggestions coincide)."""
    import optuna

    _check_model(model)
    return optuna.create_study(
        study_name=name or study_name(model, profile),
        storage=storage(url, profile),
        direction="minimize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
    )


def sized_config(model: str, profile: str | Profile, depth: int, size: float) -> tuple[dict[str, Any], int]:
    """Config overrides ``{depth knob: depth, "width": w}`` whose parameter count is nearest to ``size`` × the
    profile's neural ODE's among the widths in the ±:data:`BAND` band (nearest of all when none is), and that
    count."""
    ref = models.n_parameters(models.build("neural_ode", profile))
    target = size * ref
    knob = DEPTH[_check_model(model)][0]

    def count(w: int) -> int:
        return models.n_parameters(models.build(model, profile, **{knob: depth, "width": w}))

    lo, hi = 1, 2
    while count(hi) < target:
        lo, hi = hi, 2 * hi
    while lo < hi:  # the smallest width reaching the target (the count grows with the width)
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < target else (lo, mid)
    counts = {w: count(w) for w in (lo - 1, lo) if w >= 1}
    width = min(counts, key=lambda w: (abs(counts[w] - ref) > BAND * ref, abs(counts[w] - target)))
    return {knob: depth, "width": width}, counts[width]


def objective(
    model: str,
    split: comparison.Splits,
    profile: str | Profile = "default",
    *,
    trials: int,
    seed: int = 0,
    device: str = "auto",
):
    """The function of a trial: suggest, pre-train, fine-tune, return the validation loss (see the module
    docstring). A trial numbered ≥ ``trials`` (workers that started together past the budget) stops the study
    and is pruned without training."""
    import optuna

    ref = models.n_parameters(models.build("neural_ode", profile))

    def run(trial: optuna.Trial) -> float:
        if trial.number >= trials:
            trial.study.stop()
            raise optuna.TrialPruned(f"over the budget of {trials} trials")
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        knob, choices = DEPTH[model]
        depth = trial.suggest_categorical(knob, choices)
        size = trial.suggest_float("size", 1 - SIZE, 1 + SIZE)
        noise = trial.suggest_categorical("noise", (True, False))
        config, n = sized_config(model, profile, depth, size)
        trial.set_user_attr("config", config)
        trial.set_user_attr("n_parameters", n)
        if abs(n - ref) > BAND * ref:
            raise optuna.TrialPruned(f"{n} parameters, outside ±{BAND:.0%} of the neural ODE's {ref}")
        pre = comparison.pretrain(model, split.simulated, profile, seed=seed, device=device, **config)
        res = comparison.finetune_run(
            pre.model,
            split.virtual_train,
            split.virtual_val,
            split,
            profile,
            seed=seed,
            lr=lr,
            noise=noise,
            device=device,
        )
        trial.set_user_attr("seconds", sum(h["seconds"] for h in pre.history + res.history))
        return float(res.best_loss)

    return run


def tune(
    model: str,
    trials: int,
    profile: str | Profile = "default",
    *,
    url: str | os.PathLike | None = None,
    name: str | None = None,
    split: comparison.Splits | None = None,
    seed: int = 0,
    device: str = "auto",
    sampler_seed: int | None = None,
):
    """Run trials of ``model``'s study (:func:`load_study`) in this process until it holds ``trials``
    trials, counting those of every worker; returns the study. ``split``: default
    :func:`nanoutils.comparison.splits` of the profile."""
    import optuna

    _check_model(model)
    if trials < 1:
        raise TuningError(f"trials {trials}: need at least 1")
    study = load_study(model, profile, url, name, sampler_seed)
    if study.user_attrs.get("trials", trials) != trials:
        raise TuningError(
            f"trials {trials}: study {study.study_name} was started with a budget of "
            f"{study.user_attrs['trials']} trials"
        )
    study.set_user_attr("trials", trials)
    study.set_user_attr("model", model)
    split = split or comparison.splits(profile, seed)
    if len(study.trials) < trials:
        study.optimize(
            objective(model, split, profile, trials=trials, seed=seed, device=device),
            callbacks=[optuna.study.MaxTrialsCallback(trials, states=None)],
        )
    return study


def best_settings(study) -> Settings:
    """The :class:`Settings` of the finished trial of ``study`` (within its budget) with the lowest
    validation loss."""
    import optuna

    budget = study.user_attrs.get("trials")
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if budget is None or t.number < budget
    ]
    if not done:
        raise TuningError(f"study {study.study_name}: no finished trial")
    best = min(done, key=lambda t: t.value)
    return Settings(
        study.user_attrs["model"],
        best.params["lr"],
        dict(best.user_attrs["config"]),
        bool(best.params["noise"]),
        float(best.value),
        int(best.user_attrs["n_parameters"]),
    )


def _check_model(model: str) -> str:
    if model not in DEPTH:
        raise TuningError(f"model {model!r}: not a deep model of Table 1; choose one of {', '.join(DEPTH)}")
    return model
