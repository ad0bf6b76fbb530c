"""PINN baseline: the ResNet body trained with an extra DSPM-DE physics term (a Table 1 row).

What is penalised (:meth:`PINN.auxiliary_loss`, added by the training loop to the data loss):

    physics_weight · mean over (sample b, collocation flux τ_k, present ion j, DSPM-DE converged) of
        ((ĉ_bkj − c^DSPM_bkj) / c_f,bj)²,

the squared misfit, in rejection units (R = 1 − c_p / c_f, so ΔR = −Δc / c_f), between the network's
permeate ĉ and the DSPM-DE permeate (``nanoutils.dspmde.solve``, extended Nernst–Planck in the pore
with Donnan, steric and dielectric partitioning and electroneutrality, solved to convergence) with the
membrane ``Membrane.nf270(**config.membrane)`` (the fitted Z goes in ``membrane``), at the batch's
feed compositions and ``collocation`` fluxes τ_k = k / collocation · collocation_max, k = 1…collocation
(τ = Jv / flux_scale). Why: the residual of the DSPM-DE equations themselves is only defined for the
pore profiles, which the network does not predict; the converged solution is the unique zero of that
residual, so the misfit to it is the physics constraint expressed in the network's own output, and it
vanishes exactly when the network reproduces DSPM-DE. It regularises the network towards DSPM-DE at
compositions and fluxes the data do not cover. Labels are cached per (feed composition, collocation
grid), so after the first epoch training does not call the solver again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from .. import dspmde
from ..profiles import Profile, get
from ._resnet import ResNet, ResNetConfig


def rejection_residual(
    feed: Tensor, species_mask: Tensor, pred: Tensor, reference: Tensor, valid: Tensor | None = None
) -> Tensor:
    """Mean of ((pred − reference) / c_f)² over present species and ``valid`` (B, K) points (rejection
    units, dimensionless); feed (B, d), pred and reference (B, K, d) in mol/m³; 0 when nothing is valid."""
    m = (
        species_mask.bool()[:, None, :]
        & (torch.ones(pred.shape[:2], dtype=torch.bool, device=pred.device) if valid is None else valid.bool())[
            ..., None
        ]
    )
    scale = torch.where(species_mask.bool(), feed, torch.ones_like(feed)).to(pred.dtype)[:, None, :]
    err = torch.where(
        m, (pred - torch.where(m, reference.to(pred.dtype), pred)) / scale, torch.zeros((), dtype=pred.dtype)
    )
    return (err**2).sum() / m.sum().clamp_min(1).to(pred.dtype)


@dataclass(frozen=True)
class PINNConfig(ResNetConfig):
    """ResNet settings plus physics_weight (weight of the DSPM-DE term; 0 = plain ResNet); collocation:
    number of collocation fluxes per feed, up to collocation_max (τ); membrane: keyword overrides of
    ``dspmde.Membrane.nf270`` (e.g. the fitted r_p, dx_e, eps_p, X_d)."""

    physics_weight: float = 1.0
    collocation: int = 4
    collocation_max: float = 1.0
    membrane: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0 <= self.physics_weight < float("inf")):
            raise ValueError(f"physics_weight must be finite and ≥ 0, got {self.physics_weight}")
        if self.collocation < 1 or not self.collocation_max > 0:
            raise ValueError(
                f"need collocation ≥ 1 and collocation_max > 0; got {self.collocation}, {self.collocation_max}"
            )
        dspmde.Membrane.nf270(**self.membrane)  # validates the overrides
        if self.membrane_code and self.physics_weight:
            raise ValueError(
                "a PINN's DSPM-DE residual is for its one membrane (config.membrane); "
                f"membrane_code = {self.membrane_code} needs physics_weight = 0"
            )

    @classmethod
    def for_profile(cls, profile: str | Profile, **overrides) -> PINNConfig:
        """The configuration of a run profile (the ResNet's width, knob ``resnet_width``), with ``overrides``."""
        return replace(cls(width=get(profile).settings.resnet_width), **overrides)


class PINN(ResNet):
    """ResNet whose training loss adds the DSPM-DE physics term of the module docstring."""

    Config = PINNConfig
    config: PINNConfig

    def __init__(self, config: PINNConfig | None = None):
        super().__init__(config or PINNConfig())
        self._labels: dict[bytes, np.ndarray] = {}  # feed bytes → DSPM-DE permeate (collocation, d), mol/m³

    def collocation_fluxes(self) -> np.ndarray:
        """The collocation fluxes (collocation,) in m/s."""
        cfg = self.config
        return np.arange(1, cfg.collocation + 1) / cfg.collocation * cfg.collocation_max * cfg.flux_scale

    def physics_labels(self, feed: Tensor) -> np.ndarray:
        """DSPM-DE permeate (B, collocation, d) mol/m³ at the collocation fluxes (NaN where it did not
        converge), solved once per feed composition and cached."""
        f = feed.detach().double().cpu().numpy()
        keys = [row.tobytes() for row in f]
        new = [i for i, k in enumerate(keys) if k not in self._labels]
        if new:
            res = dspmde.solve(
                f[new],
                self.collocation_fluxes(),
                membrane=dspmde.Membrane.nf270(**self.config.membrane),
                species=self.config.species,
            )
            perm = np.where(res.converged[..., None], res.permeate, np.nan)
            self._labels.update({keys[i]: perm[n] for n, i in enumerate(new)})
        return np.stack([self._labels[k] for k in keys])

    def auxiliary_loss(self, batch: dict[str, Tensor], pred: Tensor) -> Tensor:
        """physics_weight × :func:`rejection_residual` between the network and DSPM-DE at the batch's feeds
        and the collocation fluxes (``pred``, at the data fluxes, is not used)."""
        cfg = self.config
        if cfg.physics_weight == 0:
            return pred.new_zeros(())
        feed, mask = batch["feed"], batch["species_mask"]
        ref = torch.as_tensor(self.physics_labels(feed), device=pred.device)
        flux = torch.as_tensor(self.collocation_fluxes(), dtype=pred.dtype, device=pred.device).expand(len(feed), -1)
        out = self(feed, mask, flux)
        return cfg.physics_weight * rejection_residual(
            feed, mask, out, torch.nan_to_num(ref), ~torch.isnan(ref).any(-1)
        )
