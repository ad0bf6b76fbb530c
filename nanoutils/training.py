"""The training loop shared by every learned model.

The data set it trains on is :class:`~nanoutils.training_data.TransportData`
(re-exported here with :func:`split_by_composition`). :func:`train` fits any
model of :mod:`nanoutils.models` with Adam (lr halved every ``lr_step`` epochs),
minimising the weighted, masked MSE of eq. 4 on scaled concentrations
(c − ĉ) / a: by default a = c_f per ion (``loss_scale="feed"``), so the loss is
the squared rejection error; ``"equivalent"`` uses a = ½ Σ |z| c_f. With ``target_sampler`` (eq. 5,
fine-tuning) every step draws its targets from N(μ, σ²), reseeded from (seed,
step) so a resumed run draws the same numbers. Data with an observation matrix W (measured salts, see
:class:`TransportData`) are compared as quantities W c, scaled by their feed values W c_f. Checkpoints ``last.pt`` and
``best.pt`` in ``run_dir`` hold everything needed to continue exactly.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import env, ions, models
from ._files import atomic_path
from .models import ModelInputError, equivalent_scale
from .profiles import SETTINGS, Profile, get
from .training_data import ARRAYS as _ARRAYS
from .training_data import FORMAT_VERSION
from .training_data import TransportData as TransportData
from .training_data import split_by_composition as split_by_composition


class CheckpointMismatchError(ValueError):
    """``resume=True`` found a checkpoint of another model, train config or data set; the message says which."""


#: Values of ``train(resume=…)``: False (start afresh), True (continue; a checkpoint of another run is an
#: error), "if_compatible" (continue; a checkpoint of another run is replaced by a fresh run, with a warning).
RESUME = (False, True, "if_compatible")


#: (mean, σ, global step) → targets; see :func:`gaussian_targets`.
TargetSampler = Callable[[Tensor, Tensor, int], Tensor]


def masked_mse(pred: Tensor, target: Tensor, scale: Tensor, mask: Tensor, weight: Tensor) -> Tensor:
    """Eq. 4: Σ w m ((ĉ − c)/s)² / Σ w m over (sample, flux, ion); pred/target (B, K, d) mol/m³,
    scale (B,) or (B, d) mol/m³ (per sample, or per sample and ion)."""
    wm = mask.to(pred.dtype) * weight.to(pred.dtype)[:, None, None]
    scale = scale[:, None, None] if scale.ndim == 1 else scale[:, None, :]
    err = ((pred - target) / scale) ** 2
    return (err * wm).sum() / wm.sum().clamp_min(torch.finfo(pred.dtype).tiny)


def gaussian_targets(seed: int) -> TargetSampler:
    """Eq. 5: targets μ + σ ε, ε ~ N(0, 1), from a generator reseeded with (seed, step) at every step."""

    def sample(mean: Tensor, sigma: Tensor, step: int) -> Tensor:
        gen = torch.Generator(device=mean.device).manual_seed((seed * 1_000_003 + step) % 2**63)
        return mean + sigma * torch.randn(mean.shape, generator=gen, device=mean.device, dtype=mean.dtype)

    return sample


#: Loss scales by name: (feed (B, d), z (d,), mask (B, d)) → (B,) or (B, d) mol/m³. "equivalent": the
#: feed's ½ Σ |z| c (errors relative to the salinity; trace ions barely count); "feed": each ion's own
#: feed concentration (errors in rejection units, 1 − c_p/c_f, so trace ions count as much as major ones).
LOSS_SCALES: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "equivalent": equivalent_scale,
    "feed": lambda feed, z, mask: torch.where(mask.bool(), feed, torch.ones_like(feed)),
}

#: Training stages with a loop knob in :data:`nanoutils.profiles.SETTINGS`.
STAGES = ("pretraining", "finetuning", "family_pretraining", "code_calibration")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings. lr_step: epochs between halvings (None: epochs // 5, the paper's 200 of
    1000); patience: early stopping on the validation loss (None: off); dtype: "float32" or "float64";
    loss_scale: a name in LOSS_SCALES; threads: CPU threads torch uses while training (None: torch's default,
    the machine's cores). Some CPU kernels (convolutions, matrix products) split their sums over the threads,
    so the weights are bit-identical from the same seed only for the same thread count: the default, 2 (the
    cores of the machines this project targets, as fast there as torch's default), gives the same numbers on
    every machine, whatever its core count (same CPU type and library versions)."""

    epochs: int = SETTINGS["pretraining"].default["epochs"]
    batch_size: int = 32
    lr: float = 1e-3
    lr_step: int | None = None
    lr_gamma: float = 0.5
    seed: int = 0
    patience: int | None = None
    eval_batch_size: int = 256
    restore_best: bool = True
    dtype: str = "float32"
    loss_scale: str = "feed"
    threads: int | None = 2

    def __post_init__(self) -> None:
        if self.loss_scale not in LOSS_SCALES:
            raise ValueError(f"unknown loss_scale {self.loss_scale!r}; choose one of {', '.join(LOSS_SCALES)}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or (self.lr_step is not None and self.lr_step < 1):
            raise ValueError(f"need epochs, batch_size, lr_step ≥ 1 and lr > 0; got {self}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be ≥ 1 or None, got {self.threads!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    @classmethod
    def for_profile(cls, profile: str | Profile, stage: str = "pretraining", **overrides: Any) -> TrainConfig:
        """The loop of ``stage`` (:data:`STAGES`) in a run profile (its knob in
        :data:`nanoutils.profiles.SETTINGS`, epochs capped at the profile's ``max_epochs``), with ``overrides``."""
        if stage not in STAGES:
            raise ValueError(f"unknown training stage {stage!r}; choose one of {', '.join(STAGES)}")
        return replace(cls(**get(profile).settings[stage]), **overrides)

    @property
    def step_epochs(self) -> int:
        return self.lr_step or max(1, self.epochs // 5)


@dataclass
class TrainResult:
    """model (best weights when ``restore_best`` and a best exists), per-epoch history, best epoch and loss."""

    model: models.Model
    history: list[dict[str, float]]
    best_epoch: int
    best_loss: float
    stopped_early: bool
    run_dir: Path | None


def train(
    model: models.Model,
    train_data: TransportData,
    val_data: TransportData | None = None,
    config: TrainConfig | None = None,
    *,
    run_dir: str | os.PathLike | None = None,
    resume: bool | str = False,
    target_sampler: TargetSampler | None = None,
    device: str = "auto",
    progress: bool = True,
    callback: Callable[[dict[str, float]], None] | None = None,
    check_start: bool = False,
) -> TrainResult:
    """Fit ``model`` to ``train_data``; the best epoch is chosen on ``val_data`` (else on the training loss).

    ``resume=True`` continues from ``run_dir/last.pt`` (same model spec, config and
    data required, else :class:`CheckpointMismatchError`) and reproduces an
    uninterrupted run; a finished run is loaded without training. ``resume="if_compatible"`` does the same
    when the checkpoint matches, and otherwise warns and trains ``model`` from the start in ``run_dir``
    (replacing the checkpoint; the mismatch is found before the weights of ``model`` change). ``check_start=True``
    also requires the
    starting weights to be those of the checkpoint's run (fine-tuning: never resume a run that started from
    another pre-trained model; the model's weights are fingerprinted before training). ``callback(record)`` runs after
    each epoch. Seed the model's initialisation yourself (``env.seed_everything``)
    before building it; the loop seeds shuffling and noise from ``config.seed``.
    """
    cfg = config or TrainConfig()
    if resume not in RESUME:
        raise ValueError(f"resume must be one of {RESUME}, got {resume!r}")
    dev, dtype = torch.device(env.resolve_device(device)), getattr(torch, cfg.dtype)
    for data in (train_data, val_data):
        if data is not None and data.species != tuple(model.config.species):
            raise ModelInputError(f"data species {data.species} differ from the model's {tuple(model.config.species)}")
    if len(train_data) == 0:
        raise ModelInputError("the training set is empty")
    with env.torch_threads(cfg.threads):  # the reduction order of some kernels depends on the thread count
        return _run(
            model,
            train_data,
            val_data,
            cfg,
            dev,
            dtype,
            run_dir,
            resume,
            target_sampler,
            progress,
            callback,
            check_start,
        )


def _run(
    model: models.Model,
    train_data: TransportData,
    val_data: TransportData | None,
    cfg: TrainConfig,
    dev: torch.device,
    dtype: torch.dtype,
    run_dir: str | os.PathLike | None,
    resume: bool | str,
    target_sampler: TargetSampler | None,
    progress: bool,
    callback: Callable[[dict[str, float]], None] | None,
    check_start: bool,
) -> TrainResult:
    """The loop of :func:`train` (inputs checked, thread count set)."""
    env.seed_everything(cfg.seed)
    model.to(device=dev, dtype=dtype)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_epochs, gamma=cfg.lr_gamma)
    run_dir = Path(run_dir) if run_dir is not None else None
    data_id = _fingerprint(train_data, val_data, start=model if check_start else None)
    state: dict[str, Any] = {
        "epoch": 0,
        "step": 0,
        "history": [],
        "best_epoch": 0,
        "best_loss": float("inf"),
        "stopped": False,
    }
    best_weights = None
    if resume:
        if run_dir is None:
            raise ValueError("resume=True needs a run_dir")
        try:
            if (run_dir / "last.pt").exists():
                state = _restore(run_dir / "last.pt", model, opt, sched, cfg, data_id)
        except CheckpointMismatchError as err:
            if resume != "if_compatible":
                raise
            warnings.warn(f"{err}\n→ training from scratch in {run_dir}", stacklevel=2)
        else:
            if (run_dir / "best.pt").exists():
                best_weights = torch.load(run_dir / "best.pt", map_location=dev, weights_only=False)["model"]
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    train_t = _tensors(train_data, dev, dtype, cfg.loss_scale)
    val_t = _tensors(val_data, dev, dtype, cfg.loss_scale) if val_data else None
    n = len(train_data)
    epochs = range(state["epoch"] + 1, cfg.epochs + 1) if not state["stopped"] else range(0)
    bar = tqdm(epochs, initial=state["epoch"], total=cfg.epochs, disable=not progress)
    for epoch in bar:
        t0, losses = time.perf_counter(), []
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
        for start in range(0, n, cfg.batch_size):
            b = {k: v[order[start : start + cfg.batch_size].to(dev)] for k, v in train_t.items()}
            target = target_sampler(b["permeate"], b["sigma"], state["step"]) if target_sampler else b["permeate"]
            target = torch.where(b["target_mask"], target, torch.zeros_like(target))
            loss = _loss(model, b, target)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, step {state['step']}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] += 1
            losses.append(loss.item())
        lr = opt.param_groups[0]["lr"]
        sched.step()
        val = evaluate(model, val_data, batch_size=cfg.eval_batch_size, _tensors_cache=val_t) if val_data else None
        record = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": val,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
        }
        state["history"].append(record)
        state["epoch"] = epoch
        score = val if val is not None else record["train_loss"]
        if score < state["best_loss"]:
            state["best_loss"], state["best_epoch"] = score, epoch
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state["stopped"] = cfg.patience is not None and epoch - state["best_epoch"] >= cfg.patience
        if run_dir is not None:
            if state["best_epoch"] == epoch:
                _save(run_dir / "best.pt", model, opt, sched, cfg, state, data_id)
            _save(run_dir / "last.pt", model, opt, sched, cfg, state, data_id)
        bar.set_postfix(
            train=f"{record['train_loss']:.3g}", val=f"{val:.3g}" if val is not None else "-", lr=f"{lr:.2g}"
        )
        if callback is not None:
            callback(record)
        if state["stopped"]:
            break
    if cfg.restore_best and best_weights is not None:
        model.load_state_dict(best_weights)
    return TrainResult(model, state["history"], state["best_epoch"], state["best_loss"], state["stopped"], run_dir)


@torch.no_grad()
def predict_dataset(model: nn.Module, data: TransportData, batch_size: int = 256, *, _tensors_cache=None) -> Tensor:
    """Model permeate (N, K, d) mol/m³ at the data set's flux points (0 at padded points)."""
    p = next(model.parameters())
    t = _tensors_cache or _tensors(data, p.device, p.dtype)
    model.eval()
    return torch.cat(
        [model(*_inputs({k: v[i : i + batch_size] for k, v in t.items()})) for i in range(0, len(data), batch_size)]
    )


@torch.no_grad()
def evaluate(
    model: nn.Module, data: TransportData, batch_size: int = 256, *, loss_scale: str = "feed", _tensors_cache=None
) -> float:
    """Eq. 4 loss on the target means of ``data`` (no noise), with its masks and weights."""
    p = next(model.parameters())
    t = _tensors_cache or _tensors(data, p.device, p.dtype, loss_scale)
    pred = _observe(predict_dataset(model, data, batch_size, _tensors_cache=t), t.get("observation"))
    return float(masked_mse(pred, t["permeate"], t["scale"], t["target_mask"], t["weight"]))


class CheckpointError(ValueError):
    """A file that is not a readable model checkpoint (corrupt, truncated, or another program's); names it."""


def load_model(path: str | os.PathLike, device: str = "cpu") -> nn.Module:
    """The model stored in a checkpoint written by :func:`train` or :func:`save_model` (rebuilt by name,
    weights loaded). A missing, corrupt or foreign file raises :class:`CheckpointError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}, not a checkpoint")
    try:
        ckpt = torch.load(path, map_location=env.resolve_device(device), weights_only=False)
    except Exception as err:  # torch.load raises whatever the unpickler meets in a foreign or broken file
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(err).__name__})") from None
    if (
        not isinstance(ckpt, dict)
        or not {"model", "model_spec", "train_config"} <= set(ckpt)
        or not isinstance(ckpt["model_spec"], dict)
    ):
        raise CheckpointError(f"{path}: a torch file but not a nanoutils model checkpoint (no model spec and weights)")
    try:
        model = models.from_spec(ckpt["model_spec"])
        model.to(dtype=getattr(torch, ckpt["train_config"]["dtype"]))
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise CheckpointError(f"{path}: checkpoint does not match its model spec ({type(err).__name__})") from None
    return model


def save_model(model: nn.Module, path: str | os.PathLike, config: TrainConfig | None = None) -> Path:
    """Write ``model`` (a registered model) with its spec and ``config`` as a checkpoint that :func:`load_model`
    reads (the checkpoint of :func:`train` without optimiser and loop state); written to a temporary name first."""
    cfg = config or TrainConfig(dtype=str(next(model.parameters()).dtype).removeprefix("torch."))
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(
            {
                "model": model.state_dict(),
                "model_spec": models.spec(model),
                "train_config": asdict(cfg),
                "nanoutils_format": FORMAT_VERSION,
            },
            tmp,
        )
    return path


def _loss(model: nn.Module, b: dict[str, Tensor], target: Tensor) -> Tensor:
    pred = model(*_inputs(b))
    loss = masked_mse(_observe(pred, b.get("observation")), target, b["scale"], b["target_mask"], b["weight"])
    aux = getattr(model, "auxiliary_loss", None)  # e.g. a PINN residual or a soft charge penalty
    return loss + aux(b, pred) if aux is not None else loss


def _inputs(b: dict[str, Tensor]) -> tuple[Tensor, ...]:
    """The model's positional inputs from a batch: feed, species mask, flux, flux mask, and the membrane code
    when the data carry one (a membrane-aware model, :mod:`nanoutils.membrane_family`)."""
    base = (b["feed"], b["species_mask"], b["flux"], b["flux_mask"])
    return (*base, b["code"]) if "code" in b else base


def _tensors(
    data: TransportData, device: torch.device, dtype: torch.dtype, loss_scale: str = "feed"
) -> dict[str, Tensor]:
    t = {a: torch.as_tensor(getattr(data, a), device=device) for a in _ARRAYS}
    t = {a: v.to(dtype) if v.is_floating_point() else v for a, v in t.items()}
    z = torch.as_tensor(ions.charges(data.species), dtype=dtype, device=device)
    t["scale"] = LOSS_SCALES[loss_scale](t["feed"], z, t["species_mask"])
    if data.code is not None:
        t["code"] = torch.as_tensor(data.code, device=device, dtype=dtype)
    if data.observation is not None:
        t["observation"] = torch.as_tensor(data.observation, device=device, dtype=dtype)
        if t["scale"].ndim == 2:  # per-ion scales are linear in the feed: a quantity's scale is its feed value W c_f
            q_feed = _observe(t["feed"][:, None, :], t["observation"])[:, 0]
            t["scale"] = torch.where(q_feed > 0, q_feed, torch.ones_like(q_feed))
    return t


def _observe(pred: Tensor, observation: Tensor | None) -> Tensor:
    """Quantities W c (B, K, Q) from permeates (B, K, d); unchanged without an observation matrix."""
    return pred if observation is None else torch.einsum("bkd,bqd->bkq", pred, observation)


def _save(path: Path, model: nn.Module, opt, sched, cfg: TrainConfig, state: dict, data_id: str) -> None:
    ckpt = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "model_spec": models.spec(model) if type(model) in models.MODELS.values() else None,
        "train_config": asdict(cfg),
        "state": state,
        "rng": _rng_states(),
        "nanoutils_format": FORMAT_VERSION,
        "data_id": data_id,
    }
    with atomic_path(path) as tmp:  # a kill mid-write never leaves a broken checkpoint
        torch.save(ckpt, tmp)


def _restore(path: Path, model: nn.Module, opt, sched, cfg: TrainConfig, data_id: str) -> dict:
    ckpt = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    # Rebuilt through the current classes, so fields added since (with their defaults) do not count as changes.
    ckpt["train_config"] = asdict(TrainConfig(**ckpt["train_config"]))
    if ckpt["model_spec"] is not None and ckpt["model_spec"]["name"] in models.MODELS:
        ckpt["model_spec"] = models.spec(models.from_spec(ckpt["model_spec"]))
    if ckpt["train_config"] != asdict(cfg):
        raise CheckpointMismatchError(
            f"cannot resume {path}: its train config {ckpt['train_config']} differs from {asdict(cfg)}"
        )
    spec = models.spec(model) if type(model) in models.MODELS.values() else None
    if ckpt["model_spec"] != spec:
        raise CheckpointMismatchError(f"cannot resume {path}: its model {ckpt['model_spec']} differs from {spec}")
    if ckpt.get("data_id") != data_id:
        raise CheckpointMismatchError(
            f"cannot resume {path}: it was trained on other data or from other starting "
            f"weights (fingerprint {ckpt.get('data_id')}, now {data_id})"
        )
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    random.setstate(ckpt["rng"]["python"])
    np.random.set_state(ckpt["rng"]["numpy"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if torch.cuda.is_available() and ckpt["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    return ckpt["state"]


def _fingerprint(*parts: TransportData | None, start: nn.Module | None = None) -> str:
    """SHA-1 of the arrays of the training (and validation) data and of the ``start`` weights, stored in
    checkpoints so a run is never resumed on different data or from a different starting point (e.g. a
    fine-tuning run after its pre-trained model changed)."""
    h = hashlib.sha1()
    for data in parts:
        for a in _ARRAYS if data is not None else ():
            h.update(np.ascontiguousarray(getattr(data, a)).tobytes())
        if data is not None and data.observation is not None:
            h.update(np.ascontiguousarray(data.observation).tobytes())
        if data is not None and data.code is not None:
            h.update(b"code" + np.ascontiguousarray(data.code).tobytes())
        h.update(b"|")
    for tensor in start.state_dict().values() if start is not None else ():
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _rng_states() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
