"""Calibrating a membrane-aware network to one membrane, in two stages through the shared training loop.

A membrane-aware model (config ``membrane_code`` = :data:`nanoutils.membrane_family.N_CODE`) pre-trained on a
family set (:mod:`nanoutils.pretraining_set` with ``family=True``) emulates DSPM-DE for any membrane of the family's
prior; the membrane is its code input. To calibrate it on a user's measurements:

(a) **infer the code** (:func:`infer_code`): the code starts from the user's membrane as fitted by DSPM-DE
    (eq. 11 with the profile's ``baseline_fit`` budget and the labels' activity model), and only the code is
    trained — every weight frozen — on the measured means by the eq. 4 loss of :func:`nanoutils.training.train`
    (the profile's ``code_calibration`` loop);
(b) **fine-tune the weights** (:func:`finetune_weights`): eq. 5 noise-augmented fine-tuning as
    :func:`nanoutils.finetuning.finetune`, with the code frozen at (a)'s value and family feeds (each with its own
    code) mixed in.

Both stages are reported (:class:`Stage`). A code that leaves [−1, 1] is a membrane outside the prior: the report
names the parameters (:func:`nanoutils.membrane_family.outside_prior`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from . import fitting, membrane_family, metrics, models
from .finetuning import finetune, finetune_config, from_measurements, score
from .measurements import Measurements
from .profiles import Profile, get
from .training import TrainConfig, TrainResult, train
from .training_data import TransportData
from .transfer import check_no_leak


class MembraneCodeError(ValueError):
    """A model without a membrane-code input, or a start code of the wrong length; names it."""


@dataclass(frozen=True)
class Stage:
    """One calibration stage: its name, the code after it (C,), the membrane that code stands for (SI), the
    parameters outside the prior, epochs run, final training loss, in-sample score (pp) and, when
    :func:`calibrate` was given test feeds, the score on them (pp)."""

    name: str
    code: np.ndarray
    membrane: dict[str, float]
    outside_prior: list[str]
    epochs: int
    final_loss: float
    in_sample: metrics.Score | None
    held_out: metrics.Score | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "stage": self.name,
            "code": [round(float(x), 4) for x in self.code],
            "membrane": {k: float(v) for k, v in self.membrane.items()},
            "outside_prior": self.outside_prior,
            "epochs": self.epochs,
            "final_loss": self.final_loss,
            "in_sample_pp": None if self.in_sample is None else float(self.in_sample.value),
            "held_out_pp": None if self.held_out is None else float(self.held_out.value),
        }


def code_input(model: models.Model) -> torch.nn.Parameter:
    """The model's own membrane code (the parameter stage (a) trains); a model without one raises."""
    code = getattr(model, "code", None)
    if code is None:
        raise MembraneCodeError(f"{type(model).__name__} has no membrane-code input (config membrane_code = 0)")
    return code.own


def code_config(profile: str | Profile, **overrides: Any) -> TrainConfig:
    """Stage (a)'s loop: knob ``code_calibration`` of :data:`nanoutils.profiles.SETTINGS` (no early stopping: the
    last epoch is kept), with ``overrides``."""
    return TrainConfig.for_profile(profile, "code_calibration", **{"restore_best": False, **overrides})


def identifiable(species: tuple[str, ...]) -> np.ndarray:
    """Which code entries (C,) bool data on ``species`` can move: Z and n always; a binding constant K[ion] or a
    partition energy ΔW[ion] only where the ion is in the data, the site density Γ only where a binding ion is
    (Adam scales every non-zero gradient to a full step, so an entry the data do not see would drift; its
    gradient is zeroed instead)."""
    present = set(species)
    binds = bool(present & set(membrane_family.BINDING_IONS))

    def free(name: str) -> bool:
        if name == "sites":
            return binds
        return not (name.startswith(("K[", "dW[")) and name[name.index("[") + 1 : -1] not in present)

    return np.array([free(n) for n in membrane_family.NAMES])


def infer_code(
    model: models.Model,
    data: TransportData,
    start: np.ndarray,
    config: TrainConfig,
    *,
    free: np.ndarray | None = None,
    floor: np.ndarray | None = None,
    device: str = "auto",
    progress: bool = False,
) -> TrainResult:
    """Stage (a): set ``model``'s own code to ``start`` (C,) and train it alone (weights frozen) on ``data``'s target
    means (rows of ``data`` without codes use the model's code) by the shared loop on ``device``; entries where
    ``free`` (C,) is False keep their start value (default: :func:`identifiable` from the species present in
    ``data``). After every optimiser step the code is raised to ``floor`` (C,) where below it — projected gradient
    descent on the physical bounds (default :data:`nanoutils.membrane_family.CODE_FLOOR` for a family code, none
    for a code of another length), so every state the loop keeps is physical. The model is changed in place."""
    own = code_input(model)
    start = np.asarray(start, dtype=float)
    if start.shape != tuple(own.shape) or not np.isfinite(start).all():
        raise MembraneCodeError(f"start code must be {own.numel()} finite numbers, got shape {start.shape}")
    if free is None:
        present = [bool(x) for x in np.asarray(data.species_mask, dtype=bool).sum(axis=0)]
        free = identifiable(tuple(s for i, s in enumerate(data.species) if present[i]))
    if floor is None:
        floor = membrane_family.CODE_FLOOR if own.numel() == membrane_family.N_CODE else np.full(own.numel(), -np.inf)
    mask = torch.as_tensor(np.asarray(free, dtype=bool))
    low = torch.as_tensor(np.asarray(floor, dtype=float))

    def project(*_: Any) -> None:  # the loop may have moved the model to another device
        with torch.no_grad():
            own.copy_(torch.maximum(own, low.to(own.device, own.dtype)))

    with torch.no_grad():
        own.copy_(torch.as_tensor(start, dtype=own.dtype))
    project()
    hook = own.register_hook(lambda g: g * mask.to(g.device, g.dtype))
    step_hook = register_optimizer_step_post_hook(project)
    try:
        return _train_only(
            model,
            [own],
            lambda: train(model, data, None, config, device=device, progress=progress, check_start=True),
        )
    finally:
        hook.remove()
        step_hook.remove()


def finetune_weights(model: models.Model, meas: Measurements, **finetune_kwargs: Any) -> TrainResult:
    """Stage (b): :func:`nanoutils.finetuning.finetune` of every weight except the code (frozen at its value)."""
    own = code_input(model)
    weights = [p for p in model.parameters() if p is not own]
    return _train_only(model, weights, lambda: finetune(model, meas, **finetune_kwargs))


def _train_only(model: models.Model, trainable: list[torch.nn.Parameter], run) -> TrainResult:
    """``run()`` with only ``trainable`` requiring gradients (the others are skipped by Adam); flags restored."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    keep = {id(p) for p in trainable}
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in keep)
        return run()
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


#: Start codes of this process, by (training rows, profile, seed, activity): a feed set's DSPM-DE fit is made once
#: however many calibrations start from it (a transfer fold's code-only and code + weights rows).
_STARTS: dict[str, np.ndarray] = {}


def start_code(meas: Measurements, profile: str | Profile, seed: int, activity: str) -> np.ndarray:
    """Stage (a)'s start: the code of the DSPM-DE fit of ``meas`` (Z, eq. 11 from Table 2, the profile's
    ``baseline_fit`` budget, ``activity`` as the family's labels; other family parameters at the reference),
    computed once per process for the same rows, profile, seed and activity."""
    P = get(profile)
    key = f"{P.name}\0{seed}\0{activity}\0{meas.digest()}"
    if key not in _STARTS:
        res = fitting.fit(
            meas,
            start=fitting.PAPER_TABLE2,
            seed=seed,
            activity=activity,
            with_uncertainty=False,
            **P.settings.baseline_fit,
        )
        _STARTS[key] = membrane_family.from_fit(res.params).code()
    return _STARTS[key].copy()


def _stage(name: str, model: models.Model, result: TrainResult, meas: Measurements, test: Measurements | None) -> Stage:
    code = code_input(model).detach().cpu().double().numpy().copy()
    in_sample, _ = score(model, meas)
    return Stage(
        name,
        code,
        dict(membrane_family.from_code(code).values),
        membrane_family.outside_prior(code),
        len(result.history),
        float(result.history[-1]["train_loss"]) if result.history else float("nan"),
        in_sample,
        None if test is None else score(model, test)[0],
    )


def calibrate(
    model: models.Model,
    meas: Measurements,
    *,
    profile: str | Profile = "default",
    seed: int = 0,
    simulated: TransportData | None = None,
    weights: bool = True,
    start: np.ndarray | None = None,
    activity: str = "pitzer",
    test: Measurements | None = None,
    device: str = "auto",
    progress: bool = False,
    **loop: Any,
) -> tuple[models.Model, list[Stage]]:
    """Both stages on ``model`` (changed in place) for the membrane of ``meas``: (a) the code from ``start``
    (default :func:`start_code`), then, with ``weights``, (b) the weights with eq. 5 noise (``simulated``: family
    feeds mixed in, the profile's count), both on ``device``. ``test``: feeds kept out of both stages (one among
    the calibration rows raises :class:`nanoutils.transfer.LeakageError`), scored after each. ``loop``:
    :class:`TrainConfig` overrides for both stages (e.g. ``threads``). Returns the model and each stage's report."""
    P = get(profile)
    if test is not None:
        check_no_leak(meas, test.feed_keys)
    data = from_measurements(meas, tuple(model.config.species))
    start = start_code(meas, P, seed, activity) if start is None else start
    res_a = infer_code(model, data, start, code_config(P, seed=seed, **loop), device=device, progress=progress)
    stages = [_stage("code", model, res_a, meas, test)]
    if weights:
        res_b = finetune_weights(
            model,
            meas,
            profile=P,
            simulated=simulated,
            config=finetune_config(P, seed=seed, **loop),
            device=device,
            progress=progress,
        )
        stages.append(_stage("code + weights", model, res_b, meas, test))
    return model, stages
