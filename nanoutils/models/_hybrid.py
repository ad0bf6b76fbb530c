"""Hybrid model: a small network supplies the membrane closure, DSPM-DE computes the transport.

Per feed (the flux does not enter) the network reads the same static inputs as the other learned
models (``_encoding.static_features``: species mask, per-ion log-feed feature, log-salinity) and returns
bounded corrections to a fitted constant-parameter DSPM-DE (``config.base``, a
:meth:`nanoutils.fitting.Model.to_dict`, e.g. a ``dspmde_plus`` fit):

    X_d(c_f)  = X_d⁰ + A_X · tanh(o_X)                       (mol/m³; the isotherm's binding term is kept)
    ΔW_i(c_f) = ΔW_i⁰ + A_W · tanh(o_i) · k_i                (k_B T; k_i = 1 for the ions of ``known_ions``)
    ε_p(c_f)  = ε_p⁰ · exp(A_ε · tanh(o_ε))                  (only with ``eps_range`` > 0)

r_p and Δx_e stay at the fit. An ion outside ``known_ions`` (not in the calibration data) gets no correction:
its ΔW is the fit's (0 for an ion the fit never saw). With the last layer at zero (the initial state) every
correction is zero and the model is the fitted DSPM-DE exactly. The permeate is
:func:`nanoutils.dspmde.solve_torch` (ideal activities, no film: the feed is the membrane-surface feed, as for
every learned model) at ``config.temperature``, so it is electroneutral by construction and differentiable in
the network's weights through the implicit-function sensitivities of the converged DSPM-DE.

:meth:`HybridDSPMDE.auxiliary_loss` adds the regulariser toward the fit to the training loss,
``reg_weight · mean_feeds Σ_k (δ_k / A_k)²`` over the active corrections (each a tanh in (−1, 1)).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import dspmde, ions
from ..fitting import Model as FittedModel
from ..profiles import SETTINGS, Profile, get
from ._encoding import FLUX_SCALE_M_S, checked_tau, static_features

_DEFAULTS = SETTINGS["hybrid"].default


def _nf270() -> dict[str, Any]:
    return FittedModel(dspmde.Membrane.nf270()).to_dict()


@dataclass(frozen=True)
class HybridConfig:
    """base: the fitted DSPM-DE the corrections start from (:meth:`nanoutils.fitting.Model.to_dict`; default the
    paper's NF270); known_ions: ions that get a ΔW correction (those of the calibration data); width: hidden
    width of the two-layer tanh network; x_range (mol/m³), dw_range (k_B T), eps_range (–, of ln ε_p; 0: ε_p
    fixed): bounds A of the corrections; reg_weight: weight of the regulariser toward the fit; temperature (K)
    and n_cells of the DSPM-DE solve; species: column order of the feed."""

    base: dict[str, Any] = field(default_factory=_nf270)
    known_ions: tuple[str, ...] = ()
    width: int = _DEFAULTS["width"]
    x_range: float = _DEFAULTS["x_range"]
    dw_range: float = _DEFAULTS["dw_range"]
    eps_range: float = 0.0
    reg_weight: float = _DEFAULTS["reg_weight"]
    temperature: float = 298.15
    n_cells: int = 10
    species: tuple[str, ...] = field(default_factory=ions.species)

    def __post_init__(self) -> None:
        object.__setattr__(self, "species", tuple(ions.canonical(s) for s in self.species))
        object.__setattr__(self, "known_ions", tuple(ions.canonical(s) for s in self.known_ions))
        unknown = sorted(set(self.known_ions) - set(self.species))
        if unknown:
            raise ValueError(f"known_ions {unknown} are not among the model's species {self.species}")
        if self.width < 1 or self.n_cells < 2:
            raise ValueError(f"need width ≥ 1 and n_cells ≥ 2; got {self.width}, {self.n_cells}")
        for name in ("x_range", "dw_range", "eps_range", "reg_weight"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and ≥ 0, got {value!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0 K, got {self.temperature!r}")
        FittedModel.from_dict(self.base)  # a bad base fails here, naming the bad entry

    @classmethod
    def for_profile(cls, profile: str | Profile, **overrides: Any) -> HybridConfig:
        """The configuration of a run profile (knob ``hybrid``: width, correction bounds, regulariser weight),
        with ``overrides`` (``base``, ``known_ions`` and ``temperature`` come from a calibration)."""
        s = get(profile).settings.hybrid
        sized = cls(width=s["width"], x_range=s["x_range"], dw_range=s["dw_range"], reg_weight=s["reg_weight"])
        return replace(sized, **overrides)


class HybridDSPMDE(nn.Module):
    """Network closure + DSPM-DE transport; same call and output as :class:`~nanoutils.models.NeuralODE`:
    ``model(feed (B, d) mol/m³, species_mask (B, d), flux (B, K) m/s, flux_mask (B, K) | None)`` → (B, K, d)
    mol/m³ (0 at padded flux points and absent species; NaN where DSPM-DE did not converge, warned)."""

    Config = HybridConfig
    z: Tensor  # charges (d,), a buffer
    known: Tensor  # 1 for ions with a ΔW correction (d,), a buffer

    def __init__(self, config: HybridConfig | None = None):
        super().__init__()
        self.config = cfg = config or HybridConfig()
        d = len(cfg.species)
        self.fitted = FittedModel.from_dict(cfg.base)
        self.register_buffer("z", torch.tensor(ions.charges(cfg.species), dtype=torch.get_default_dtype()))
        self.register_buffer("known", torch.tensor([float(s in cfg.known_ions) for s in cfg.species]))
        self.net = nn.Sequential(nn.Linear(2 * d + 1, cfg.width), nn.Tanh(), nn.Linear(cfg.width, cfg.width), nn.Tanh())
        self.out = nn.Linear(cfg.width, 2 + d)  # o_X, o_ε, o_W (d)
        nn.init.zeros_(self.out.weight)  # zero corrections: the fitted DSPM-DE exactly
        nn.init.zeros_(self.out.bias)

    def corrections(self, feed: Tensor, species_mask: Tensor) -> Tensor:
        """The bounded corrections in units of their bounds, tanh(o) ∈ (−1, 1), (B, 2 + d): X_d, ln ε_p, ΔW_i;
        entries that do not act (ε_p with ``eps_range`` 0, ions outside ``known_ions``) are exactly 0."""
        x = static_features(feed.to(self.z.dtype), species_mask, self.z)
        t = torch.tanh(self.out(self.net(x)))
        active = torch.cat([torch.ones(1), torch.tensor([float(self.config.eps_range > 0)]), self.known.cpu()])
        return t * active.to(t)

    def closure(self, feed: Tensor, species_mask: Tensor) -> tuple[Tensor, Tensor]:
        """The membrane state of each feed, float64: params (B, 4) = (r_p m, Δx_e m, ε_p, X_d mol/m³) and the
        partition energies ΔW (B, d) in k_B T (the fit's plus the network's correction)."""
        cfg, mem = self.config, self.fitted.membrane
        t = self.corrections(feed, species_mask).double()
        n = len(t)
        params = torch.stack(
            [
                torch.full((n,), mem.r_p, dtype=torch.float64),
                torch.full((n,), mem.dx_e, dtype=torch.float64),
                mem.eps_p * torch.exp(cfg.eps_range * t[:, 1]),
                mem.X_d + cfg.x_range * t[:, 0],
            ],
            dim=1,
        )
        base = {ions.canonical(k): v for k, v in self.fitted.partition_energy.items()}
        w0 = torch.tensor([float(base.get(s, 0.0)) for s in cfg.species], dtype=torch.float64)
        return params, w0 + cfg.dw_range * t[:, 2:]

    def forward(self, feed: Tensor, species_mask: Tensor, flux: Tensor, flux_mask: Tensor | None = None) -> Tensor:
        cfg = self.config
        _, fmask = checked_tau(feed, species_mask, flux, flux_mask, cfg.species, FLUX_SCALE_M_S, self.z.dtype)
        params, dW = self.closure(feed, species_mask)
        c = feed.detach().double().cpu().numpy()
        present = (species_mask.bool() & (feed > 0)).cpu().numpy()
        j = flux.detach().double().cpu().numpy()
        fm = fmask.cpu().numpy()
        groups: dict[tuple, list[int]] = {}  # feeds with the same ions and fluxes: one batched solve
        for b in range(len(c)):
            groups.setdefault((tuple(np.flatnonzero(present[b])), tuple(j[b][fm[b]])), []).append(b)
        index: list[list[np.ndarray]] = [[], [], []]
        values = []
        for (cols, fluxes), rows in groups.items():
            if not cols or not fluxes:
                continue
            cols_a, rows_a = np.array(cols), np.array(rows)
            perm = dspmde.solve_torch(
                c[np.ix_(rows_a, cols_a)],
                np.array(fluxes),
                params[rows_a],
                dW=dW[rows_a][:, cols_a],
                species=[cfg.species[i] for i in cols],
                isotherm=self.fitted.isotherm,
                temperature=cfg.temperature,
                temperature_model=self.fitted.temperature_model,
                n_cells=cfg.n_cells,
            )  # (n, m, len(cols))
            k = np.stack([np.flatnonzero(fm[r]) for r in rows])  # (n, m) flux positions
            bi, ki, ci = np.broadcast_arrays(rows_a[:, None, None], k[:, :, None], cols_a[None, None, :])
            for store, idx in zip(index, (bi, ki, ci), strict=True):
                store.append(idx.ravel())
            values.append(perm.reshape(-1))
        out = torch.zeros((*flux.shape, len(cfg.species)), dtype=torch.float64)
        if values:
            where = tuple(torch.from_numpy(np.concatenate(i)) for i in index)
            out = out.index_put(where, torch.cat(values))
        return out.to(device=flux.device, dtype=self.z.dtype)

    def auxiliary_loss(self, batch: dict[str, Tensor], pred: Tensor) -> Tensor:
        """The regulariser toward the fitted DSPM-DE: ``reg_weight`` · mean over the batch's feeds of Σ_k t_k², t the
        corrections in units of their bounds (:meth:`corrections`); added to eq. 4 by the training loop."""
        t = self.corrections(batch["feed"], batch["species_mask"])
        return self.config.reg_weight * (t**2).sum(-1).mean()
