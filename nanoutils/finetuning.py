"""Fine-tuning a pre-trained model on measured rejections with Gaussian noise augmentation (paper eq. 5).

Measurements (:class:`nanoutils.measurements.Measurements`) become training data with
:func:`from_measurements`: one sample per feed, its measured flux points, and as
targets the measured *quantities* q = W c (an ion: w = e_i; a salt: its ions'
equivalent weights), with their permeate means μ and standard deviations σ in
mol/m³. At every optimiser step each target is drawn afresh from N(μ, σ²)
(eq. 5; :func:`nanoutils.training.gaussian_targets`, reseeded from (seed, step)),
and the loss is eq. 4 on the quantities, (W ĉ − q) / (W c_f): a squared error in
rejection units. :func:`mix_simulated` adds a few simulated (DSPM-DE) feeds with
weight 1 next to measured feeds weighted ``measured_weight`` ≫ 1, so the model
stays anchored to the physics it was pre-trained on. :func:`finetune` runs the
shared loop (Adam, lr halved every epochs/5, early stopping on validation feeds,
checkpoints and resume); :func:`score` scores with
:func:`nanoutils.metrics.rejection_error`; :func:`variant` builds the ablations.

The neural ODE's input is the feed the data give: the membrane-surface feed for
intrinsic rejections, the bulk feed for observed ones (the network then absorbs
concentration polarisation, which it cannot know from the feed alone).
Temperature is not an input: data at 20 °C and 25 °C are treated alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import env, ions, metrics, models
from .measurements import Measurements
from .profiles import Profile, get
from .training import TrainConfig, TrainResult, gaussian_targets, predict_dataset, train
from .training_data import TransportData

#: Loss weight of a measured feed relative to a simulated one (the paper's n ≫ k).
MEASURED_WEIGHT = 20.0
#: λ of the soft-penalty ablation (relative net charge squared; data loss ≈ 1e-3).
SOFT_PENALTY = 10.0
#: Ablations, each one switch away from the full method.
VARIANTS = ("full", "no_projection", "soft_penalty", "no_noise", "no_pretraining", "no_masking")


class FinetuneError(ValueError):
    """Bad input to fine-tuning (empty split, unknown variant, species the model lacks…); names the culprit."""


def finetune_config(profile: str | Profile, **overrides: Any) -> TrainConfig:
    """The fine-tuning :class:`~nanoutils.training.TrainConfig` of a profile (knob ``finetuning``: the
    pre-training schedule, Adam with lr halved every epochs/5, with fewer epochs, a smaller learning rate since
    the model starts trained, and early stopping on validation feeds; epochs capped at the profile's
    ``max_epochs``)."""
    return TrainConfig.for_profile(profile, "finetuning", **overrides)


def from_measurements(meas: Measurements, species: tuple[str, ...], weight: float = 1.0) -> TransportData:
    """Measured data as :class:`TransportData` with an observation matrix: feeds (N, d) mol/m³ in ``species``
    order, the measured fluxes (N, M) m/s, targets μ = permeate value of each quantity (N, M, Q) mol/m³ and σ
    (its standard deviation), observation W (N, Q, d) from ``MeasuredArrays.weights``; every sample gets
    ``weight``. ``metadata`` holds ``quantities``, ``feed_keys`` and ``studies``."""
    if not isinstance(meas, Measurements):
        raise FinetuneError(f"expected nanoutils.measurements.Measurements, got {type(meas).__name__}")
    if len(meas) == 0:
        raise FinetuneError("no measurements (empty split)")
    arr = meas.arrays()
    unknown = sorted(set(arr.species) - set(species))
    if unknown:
        raise FinetuneError(f"the measurements contain species {unknown} that the model does not know ({species})")
    idx = [list(species).index(s) for s in arr.species]
    feed = np.zeros((len(arr.feed_keys), len(species)))
    feed[:, idx] = arr.c_feed
    obs = np.zeros((len(arr.quantities), len(species)))
    obs[:, idx] = arr.weights
    mask = arr.mask & arr.flux_mask[..., None]
    studies = [key.split("/")[0] for key in arr.feed_keys]
    return TransportData(
        feed=feed,
        species_mask=feed > 0,
        flux=arr.Jv,
        flux_mask=arr.flux_mask,
        permeate=np.where(mask, arr.c_perm, 0.0),
        sigma=np.where(mask, arr.sigma_c_perm, 0.0),
        target_mask=mask,
        weight=np.full(len(feed), float(weight)),
        species=tuple(species),
        observation=np.where(mask.any(1)[..., None], obs[None], 0.0),  # rows of quantities a feed lacks: 0
        metadata={
            "quantities": list(arr.quantities),
            "feed_keys": list(arr.feed_keys),
            "studies": studies,
            "intrinsic": arr.intrinsic.tolist(),
        },
    )


def mix_simulated(
    measured: TransportData, simulated: TransportData | None, n_simulated: int, seed: int = 0
) -> TransportData:
    """``measured`` plus ``n_simulated`` feeds drawn (seeded) from ``simulated`` with weight 1 (0: none)."""
    if simulated is None or n_simulated == 0:
        return measured
    if not 0 < n_simulated <= len(simulated):
        raise FinetuneError(f"n_simulated must be in [0, {len(simulated)}], got {n_simulated}")
    pick = np.sort(np.random.default_rng(seed).choice(len(simulated), n_simulated, replace=False))
    sim = simulated.subset(pick)
    sim.weight = np.ones(len(sim))
    return TransportData.concat([measured, sim], metadata={**measured.metadata, "n_simulated": n_simulated})


def finetune(
    model: models.Model,
    train_meas: Measurements,
    val_meas: Measurements | None = None,
    *,
    profile: str | Profile = "default",
    simulated: TransportData | None = None,
    n_simulated: int | None = None,
    measured_weight: float = MEASURED_WEIGHT,
    noise: bool = True,
    config: TrainConfig | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool | str = False,
    device: str = "auto",
    progress: bool = False,
    callback=None,
) -> TrainResult:
    """Fine-tune ``model`` (in place) on ``train_meas`` with eq. 5 noise (``noise=False``: the means only).

    Early stopping and the kept epoch use the eq. 4 loss on ``val_meas`` (means, no noise); without
    validation feeds the run trains for the configured epochs and keeps the last. ``simulated`` and
    ``n_simulated`` (default: the profile's knob ``finetuning_simulated_feeds``) mix in DSPM-DE feeds;
    ``measured_weight`` is the weight of
    a measured feed relative to a simulated one. Checkpoints, resume and ``callback`` as
    :func:`nanoutils.training.train`.
    """
    P = get(profile)
    cfg = config or finetune_config(P)
    if val_meas is None:
        cfg = replace(cfg, patience=None, restore_best=False)
    if not measured_weight > 0:
        raise FinetuneError(f"measured_weight must be > 0, got {measured_weight}")
    species = tuple(model.config.species)
    data = from_measurements(train_meas, species, weight=measured_weight)
    n_simulated = P.settings.finetuning_simulated_feeds if n_simulated is None else n_simulated
    data = mix_simulated(data, simulated, n_simulated, cfg.seed)
    val = from_measurements(val_meas, species) if val_meas is not None else None
    sampler = gaussian_targets(cfg.seed) if noise else None
    return train(
        model,
        data,
        val,
        cfg,
        run_dir=run_dir,
        resume=resume,
        target_sampler=sampler,
        device=device,
        progress=progress,
        callback=callback,
        check_start=True,
    )


def score(model: models.Model, meas: Measurements, **kwargs: Any) -> tuple[metrics.Score, pd.DataFrame]:
    """Test error of ``model`` on ``meas`` by :func:`nanoutils.metrics.rejection_error` (pp, feed bootstrap;
    ``kwargs`` go to it) and the scored frame (feed_id = ``study/feed``, study, ion = quantity, Jv_m_s,
    R_meas, R_pred, c_feed, c_meas, c_pred, imbalance = the prediction's relative net charge)."""
    data = from_measurements(meas, tuple(model.config.species))
    pred = predict_dataset(model, data).double().numpy()
    frame = data.to_frame(pred)
    frame["feed_id"] = np.asarray(data.metadata["feed_keys"], dtype=object)[frame["feed_id"]]
    frame.insert(1, "study", frame["feed_id"].str.split("/").str[0])
    i, k, _ = np.nonzero(data.target_mask)  # the row order of to_frame
    frame["imbalance"] = charge_balance(model, data, pred)[i, k]
    return metrics.rejection_error(frame, **kwargs), frame


def charge_balance(model: models.Model, data: TransportData, pred: np.ndarray | None = None) -> np.ndarray:
    """Relative net charge |Σ z c| / Σ |z| c (N, K) of the model's permeate at every flux point of ``data``
    (NaN at padded points)."""
    pred = predict_dataset(model, data).double().numpy() if pred is None else pred
    z = torch.as_tensor(ions.charges(model.config.species), dtype=torch.float64)
    imb = models.charge_imbalance(torch.as_tensor(pred), z).numpy()
    return np.where(data.flux_mask, imb, np.nan)


@dataclass
class Variant:
    """An ablation: the model to fine-tune and whether eq. 5 noise is used."""

    name: str
    model: nn.Module
    noise: bool


def variant(name: str, pretrained: models.NeuralODE, seed: int = 0) -> Variant:
    """The model of ablation ``name`` (:data:`VARIANTS`) built from the pre-trained neural ODE ``pretrained``
    (never modified): ``full`` (a copy), ``no_projection`` (same weights, f_θ unconstrained),
    ``soft_penalty`` (unconstrained, :data:`SOFT_PENALTY` · (net charge)² added to the loss), ``no_noise``
    (fine-tuned on the means), ``no_pretraining`` (fresh weights, seeded), ``no_masking`` (f_θ does not see
    the species mask: absent ions enter only as zeros; the pre-trained weights of the mask inputs are dropped)."""
    if name not in VARIANTS:
        raise FinetuneError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    cfg = models.spec(pretrained)["config"]
    by_variant: dict[str, dict[str, Any]] = {
        "no_projection": {"project": False},
        "soft_penalty": {"project": False, "charge_penalty": SOFT_PENALTY},
        "no_masking": {"mask_features": False},
    }
    overrides = by_variant.get(name, {})
    env.seed_everything(seed)
    model = models.from_spec({"name": "neural_ode", "config": {**cfg, **overrides}})
    model.to(dtype=next(pretrained.parameters()).dtype)
    if name == "no_masking":
        _load_without_mask_inputs(model, pretrained)
    elif name != "no_pretraining":
        model.load_state_dict(pretrained.state_dict())
    return Variant(name, model, noise=name != "no_noise")


def _load_without_mask_inputs(model: nn.Module, pretrained: models.NeuralODE) -> None:
    """Copy ``pretrained``'s weights, dropping the first layer's species-mask input columns d:2d (the inputs are
    [u ⊙ m, m, log c_f, salinity, flux encodings]): the network as if it were fed 0 for the mask."""
    if not pretrained.config.mask_features:
        raise FinetuneError("the pre-trained model has no mask inputs to drop")
    d = len(pretrained.config.species)
    state = {k: v.clone() for k, v in pretrained.state_dict().items()}
    first = "func.net.0.weight"
    state[first] = torch.cat([state[first][:, :d], state[first][:, 2 * d :]], dim=1)
    model.load_state_dict(state)
