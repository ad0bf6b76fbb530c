"""The training loop shared by every learned model, and the data set it trains on.

:class:`TransportData` holds feeds, flux points and permeate targets (mean and
σ) with masks for absent species, padded flux points and missing targets.
:func:`train` fits any model of :mod:`nanoutils.models` with Adam (lr halved every
``lr_step`` epochs), minimising the weighted, masked MSE of eq. 4 on scaled
concentrations (c − ĉ) / s, s = ½ Σ |z| c_f. With ``target_sampler`` (eq. 5,
fine-tuning) every step draws its targets from N(μ, σ²), reseeded from (seed,
step) so a resumed run draws the same numbers. Checkpoints ``last.pt`` and
``best.pt`` in ``run_dir`` hold everything needed to continue exactly.
"""
from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import env, ions, models
from .models import ModelInputError, check_inputs, equivalent_scale
from .profiles import Profile, get

FORMAT_VERSION = 1
_ARRAYS = ("feed", "species_mask", "flux", "flux_mask", "permeate", "sigma", "target_mask", "weight")
#: (mean, σ, global step) → targets; see :func:`gaussian_targets`.
TargetSampler = Callable[[Tensor, Tensor, int], Tensor]


@dataclass
class TransportData:
    """N feeds × K flux points, species order ``species`` (default the ion table, d = 12).

    feed (N, d) mol/m³; species_mask (N, d) bool; flux (N, K) m/s; flux_mask
    (N, K) bool (False = padding); permeate (N, K, d) mol/m³ target means; sigma
    (N, K, d) mol/m³ target standard deviations (0 for simulated data);
    target_mask (N, K, d) bool (default: species present at a real flux point);
    weight (N,) > 0 per-sample loss weight; metadata: JSON-serialisable dict.
    """

    feed: np.ndarray
    species_mask: np.ndarray
    flux: np.ndarray
    permeate: np.ndarray
    flux_mask: np.ndarray | None = None
    sigma: np.ndarray | None = None
    target_mask: np.ndarray | None = None
    weight: np.ndarray | None = None
    species: tuple[str, ...] = field(default_factory=ions.species)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.species = tuple(ions.canonical(s) for s in self.species)
        self.feed, self.flux, self.permeate = (np.asarray(a, dtype=float) for a in (self.feed, self.flux, self.permeate))
        self.species_mask = np.asarray(self.species_mask, dtype=bool)
        n, k, d = len(self.feed), self.flux.shape[-1], len(self.species)
        self.flux_mask = np.ones((n, k), bool) if self.flux_mask is None else np.asarray(self.flux_mask, dtype=bool)
        self.sigma = np.zeros((n, k, d)) if self.sigma is None else np.asarray(self.sigma, dtype=float)
        default_target = self.species_mask[:, None, :] & self.flux_mask[:, :, None]
        self.target_mask = default_target if self.target_mask is None else np.asarray(self.target_mask, dtype=bool)
        self.weight = np.ones(n) if self.weight is None else np.asarray(self.weight, dtype=float)
        check_inputs(self.feed, self.species_mask, self.flux, self.flux_mask, self.species)
        for name in ("permeate", "sigma", "target_mask"):
            if getattr(self, name).shape != (n, k, d):
                raise ModelInputError(f"{name} must have shape {(n, k, d)}, got {getattr(self, name).shape}")
        if self.weight.shape != (n,) or not np.all(np.isfinite(self.weight) & (self.weight > 0)):
            raise ModelInputError(f"weight must be {n} finite positive numbers, got shape {self.weight.shape}")
        _no_bad(self.target_mask & ~default_target, "a target is marked for an absent species or a padded flux point")
        _no_bad(self.target_mask & ~np.isfinite(self.permeate), "target permeate is not finite", self.permeate)
        _no_bad(self.target_mask & ~(self.sigma >= 0), "target σ is negative or NaN", self.sigma)
        self.permeate = np.where(self.target_mask, self.permeate, 0.0)
        self.metadata = dict(self.metadata)

    def __len__(self) -> int:
        return len(self.feed)

    def subset(self, index: Sequence[int] | np.ndarray) -> "TransportData":
        """The samples at ``index`` (same species, flux padding and metadata)."""
        idx = np.asarray(index)
        return TransportData(**{a: getattr(self, a)[idx] for a in _ARRAYS}, species=self.species, metadata=self.metadata)

    @classmethod
    def concat(cls, parts: Sequence["TransportData"], metadata: dict[str, Any] | None = None) -> "TransportData":
        """Samples of several data sets (e.g. simulated + measured), flux axes padded to the longest."""
        if len({p.species for p in parts}) != 1:
            raise ModelInputError("data sets to concatenate have different species orders")
        k = max(p.flux.shape[1] for p in parts)
        arrays = {a: np.concatenate([_pad_k(getattr(p, a), k) if a not in ("feed", "species_mask", "weight")
                                     else getattr(p, a) for p in parts]) for a in _ARRAYS}
        meta = metadata if metadata is not None else {"parts": [p.metadata for p in parts]}
        return cls(**arrays, species=parts[0].species, metadata=meta)

    @classmethod
    def from_labels(cls, feed: np.ndarray, species_mask: np.ndarray, fluxes: np.ndarray, permeate: np.ndarray,
                    converged: np.ndarray, species: Sequence[str], metadata: dict[str, Any] | None = None) -> "TransportData":
        """A simulated set from N feeds labelled at M fluxes (m/s): unconverged points are dropped
        (flux_mask False), compositions with none left are removed, and both are counted in metadata."""
        converged = np.asarray(converged, dtype=bool)
        keep = converged.any(1)
        meta = dict(metadata or {})
        meta.update(n_compositions_labelled=int(len(converged)), n_points_labelled=int(converged.size),
                    n_points_unconverged=int((~converged).sum()), n_compositions_dropped=int((~keep).sum()))
        flux = np.broadcast_to(np.asarray(fluxes, dtype=float), converged.shape)
        perm = np.where(converged[..., None], np.nan_to_num(np.asarray(permeate, dtype=float)), 0.0)
        return cls(feed=np.asarray(feed)[keep], species_mask=np.asarray(species_mask)[keep], flux=flux[keep],
                   flux_mask=converged[keep], permeate=perm[keep], species=tuple(species), metadata=meta)

    def save(self, path: str | os.PathLike) -> Path:
        """Write a compressed ``.npz`` (arrays, species, metadata as JSON)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            header = json.dumps({"format": FORMAT_VERSION, "species": list(self.species), "metadata": self.metadata})
        except TypeError as err:
            raise ValueError(f"metadata is not JSON-serialisable: {err}") from None
        with open(path, "wb") as fh:
            np.savez_compressed(fh, header=np.array(header), **{a: getattr(self, a) for a in _ARRAYS})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TransportData":
        """Read a data set written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(str(f["header"]))
            if header.get("format") != FORMAT_VERSION:
                raise ValueError(f"{path}: data format {header.get('format')!r}, expected {FORMAT_VERSION}")
            return cls(**{a: f[a] for a in _ARRAYS}, species=tuple(header["species"]), metadata=header["metadata"])


def split_by_composition(data: TransportData, val_fraction: float = 0.2, seed: int = 0) -> tuple[TransportData, TransportData]:
    """(train, validation) split of whole feed compositions: identical feeds always land on the same side."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    _, group = np.unique(data.feed, axis=0, return_inverse=True)
    groups = np.random.default_rng(seed).permutation(group.max() + 1)
    n_val = min(max(1, round(val_fraction * len(groups))), len(groups) - 1)
    is_val = np.isin(group.ravel(), groups[:n_val])
    return data.subset(np.flatnonzero(~is_val)), data.subset(np.flatnonzero(is_val))


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

#: Epochs per profile (paper: 1000).
EPOCHS = {"smoke": 3, "default": 100, "paper": 1000}


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings. lr_step: epochs between halvings (None: epochs // 5, the paper's 200 of
    1000); patience: early stopping on the validation loss (None: off); dtype: "float32" or "float64";
    loss_scale: a name in LOSS_SCALES."""

    epochs: int = EPOCHS["default"]
    batch_size: int = 32
    lr: float = 1e-3
    lr_step: int | None = None
    lr_gamma: float = 0.5
    seed: int = 0
    patience: int | None = None
    eval_batch_size: int = 256
    restore_best: bool = True
    dtype: str = "float32"
    loss_scale: str = "equivalent"

    def __post_init__(self) -> None:
        if self.loss_scale not in LOSS_SCALES:
            raise ValueError(f"unknown loss_scale {self.loss_scale!r}; choose one of {', '.join(LOSS_SCALES)}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or (self.lr_step is not None and self.lr_step < 1):
            raise ValueError(f"need epochs, batch_size, lr_step ≥ 1 and lr > 0; got {self}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    @classmethod
    def for_profile(cls, profile: str | Profile, **overrides: Any) -> "TrainConfig":
        """The paper's schedule with the epochs of a run profile, with ``overrides``."""
        return replace(cls(epochs=EPOCHS[get(profile).name]), **overrides)

    @property
    def step_epochs(self) -> int:
        return self.lr_step or max(1, self.epochs // 5)


@dataclass
class TrainResult:
    """model (best weights when ``restore_best`` and a best exists), per-epoch history, best epoch and loss."""

    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    best_loss: float
    stopped_early: bool
    run_dir: Path | None


def train(
    model: nn.Module,
    train_data: TransportData,
    val_data: TransportData | None = None,
    config: TrainConfig | None = None,
    *,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    target_sampler: TargetSampler | None = None,
    device: str = "auto",
    progress: bool = True,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Fit ``model`` to ``train_data``; the best epoch is chosen on ``val_data`` (else on the training loss).

    ``resume=True`` continues from ``run_dir/last.pt`` (same model spec and config
    required) and reproduces an uninterrupted run. ``callback(record)`` runs after
    each epoch. Seed the model's initialisation yourself (``env.seed_everything``)
    before building it; the loop seeds shuffling and noise from ``config.seed``.
    """
    cfg = config or TrainConfig()
    dev, dtype = torch.device(env.resolve_device(device)), getattr(torch, cfg.dtype)
    for data in (train_data, val_data):
        if data is not None and data.species != tuple(model.config.species):
            raise ModelInputError(f"data species {data.species} differ from the model's {tuple(model.config.species)}")
    if len(train_data) == 0:
        raise ModelInputError("the training set is empty")
    env.seed_everything(cfg.seed)
    model.to(device=dev, dtype=dtype)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_epochs, gamma=cfg.lr_gamma)
    run_dir = Path(run_dir) if run_dir is not None else None
    state = {"epoch": 0, "step": 0, "history": [], "best_epoch": 0, "best_loss": float("inf"), "stopped": False}
    best_weights = None
    if resume:
        if run_dir is None:
            raise ValueError("resume=True needs a run_dir")
        if (run_dir / "last.pt").exists():
            state = _restore(run_dir / "last.pt", model, opt, sched, cfg)
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
            b = {k: v[order[start:start + cfg.batch_size].to(dev)] for k, v in train_t.items()}
            target = target_sampler(b["permeate"], b["sigma"], state["step"]) if target_sampler else b["permeate"]
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
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val, "lr": lr,
                  "seconds": time.perf_counter() - t0}
        state["history"].append(record)
        state["epoch"] = epoch
        score = val if val is not None else record["train_loss"]
        if score < state["best_loss"]:
            state["best_loss"], state["best_epoch"] = score, epoch
            best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state["stopped"] = cfg.patience is not None and epoch - state["best_epoch"] >= cfg.patience
        if run_dir is not None:
            if state["best_epoch"] == epoch:
                _save(run_dir / "best.pt", model, opt, sched, cfg, state)
            _save(run_dir / "last.pt", model, opt, sched, cfg, state)
        bar.set_postfix(train=f"{record['train_loss']:.3g}", val=f"{val:.3g}" if val is not None else "-", lr=f"{lr:.2g}")
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
    return torch.cat([model(t["feed"][i:i + batch_size], t["species_mask"][i:i + batch_size],
                            t["flux"][i:i + batch_size], t["flux_mask"][i:i + batch_size])
                      for i in range(0, len(data), batch_size)])


@torch.no_grad()
def evaluate(model: nn.Module, data: TransportData, batch_size: int = 256, *, loss_scale: str = "equivalent",
             _tensors_cache=None) -> float:
    """Eq. 4 loss on the target means of ``data`` (no noise), with its masks and weights."""
    p = next(model.parameters())
    t = _tensors_cache or _tensors(data, p.device, p.dtype, loss_scale)
    pred = predict_dataset(model, data, batch_size, _tensors_cache=t)
    return float(masked_mse(pred, t["permeate"], t["scale"], t["target_mask"], t["weight"]))


def load_model(path: str | os.PathLike, device: str = "cpu") -> nn.Module:
    """The model stored in a checkpoint written by :func:`train` (rebuilt by name, weights loaded)."""
    ckpt = torch.load(path, map_location=env.resolve_device(device), weights_only=False)
    model = models.from_spec(ckpt["model_spec"])
    model.to(dtype=getattr(torch, ckpt["train_config"]["dtype"]))
    model.load_state_dict(ckpt["model"])
    return model


def _loss(model: nn.Module, b: dict[str, Tensor], target: Tensor) -> Tensor:
    pred = model(b["feed"], b["species_mask"], b["flux"], b["flux_mask"])
    loss = masked_mse(pred, target, b["scale"], b["target_mask"], b["weight"])
    aux = getattr(model, "auxiliary_loss", None)  # e.g. a PINN residual or a soft charge penalty
    return loss + aux(b, pred) if aux is not None else loss


def _tensors(data: TransportData, device: torch.device, dtype: torch.dtype, loss_scale: str = "equivalent") -> dict[str, Tensor]:
    t = {a: torch.as_tensor(getattr(data, a), device=device) for a in _ARRAYS}
    t = {a: v.to(dtype) if v.is_floating_point() else v for a, v in t.items()}
    z = torch.as_tensor(ions.charges(data.species), dtype=dtype, device=device)
    t["scale"] = LOSS_SCALES[loss_scale](t["feed"], z, t["species_mask"])
    return t


def _save(path: Path, model: nn.Module, opt, sched, cfg: TrainConfig, state: dict) -> None:
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "model_spec": models.spec(model) if type(model) in models.MODELS.values() else None,
            "train_config": asdict(cfg), "state": state, "rng": _rng_states(), "nanoutils_format": FORMAT_VERSION}
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)  # a kill mid-write never leaves a broken checkpoint


def _restore(path: Path, model: nn.Module, opt, sched, cfg: TrainConfig) -> dict:
    ckpt = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    if ckpt["train_config"] != asdict(cfg):
        raise ValueError(f"cannot resume {path}: its train config {ckpt['train_config']} differs from {asdict(cfg)}")
    spec = models.spec(model) if type(model) in models.MODELS.values() else None
    if ckpt["model_spec"] != spec:
        raise ValueError(f"cannot resume {path}: its model {ckpt['model_spec']} differs from {spec}")
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    random.setstate(ckpt["rng"]["python"])
    np.random.set_state(ckpt["rng"]["numpy"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if torch.cuda.is_available() and ckpt["rng"]["cuda"] is not None:
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    return ckpt["state"]


def _rng_states() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _pad_k(a: np.ndarray, k: int) -> np.ndarray:
    widths = [(0, 0), (0, k - a.shape[1])] + [(0, 0)] * (a.ndim - 2)
    return np.pad(a, widths)


def _no_bad(bad: np.ndarray, what: str, values: np.ndarray | None = None) -> None:
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        shown = f" ({values[where]!r})" if values is not None else ""
        raise ModelInputError(f"{what} at (sample, flux point, species) index {where}{shown}")
