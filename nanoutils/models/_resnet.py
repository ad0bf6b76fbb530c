"""ResNet baseline: a residual MLP from (feed, flux) straight to the permeate (a Table 1 row).

Per (sample, flux point) the input is the same as the neural ODE's static input, [species mask,
per-ion log-feed feature, log-salinity] (``_encoding.static_features``), and the shifted Legendre
encoding of τ = Jv / flux_scale. The network predicts a change Δu of the per-ion state u = c / c_f,
and the output is anchored and projected exactly as the neural ODE's solution:

    u(τ) = 1 + τ · P_w,m(Δu),    c = c_f ⊙ u,    w = z ⊙ c_f on the present species m,

so c(Jv = 0) = c_f exactly, Σ z c = Σ z c_f (0 for a neutral feed) at every flux, and absent species
are exactly 0. The anchoring and projection run in float64 from the caller's feed
(:func:`anchored_permeate`), as in the neural ODE, so a float32 network keeps ~1e-7 relative charge.
The body is ``Linear(n_in, width)`` → ``blocks`` × [x + Linear(tanh(Linear(tanh(x))))] → tanh → ``Linear(width, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from .. import ions
from ..profiles import SETTINGS, Profile, get
from ._encoding import FLUX_SCALE_M_S, MembraneCode, checked_tau, flux_encoding, static_features, with_code
from ._projection import project_electroneutral


def anchored_permeate(
    feed: Tensor, mask: Tensor, z: Tensor, du: Tensor, tau: Tensor, fmask: Tensor, dtype: torch.dtype
) -> Tensor:
    """Permeate (B, K, d) mol/m³ = c_f ⊙ (1 + τ P_w,m(Δu)) in float64, w = z ⊙ c_f, cast to ``dtype``.

    feed (B, d) mol/m³ (the caller's, uncast), mask (B, d), z (d,) valences, du (B, K, d) the network's
    state change, tau (B, K) dimensionless flux, fmask (B, K) real flux points (0 elsewhere)."""
    f64, m = feed.double(), mask.bool()
    a = torch.where(m, f64, torch.ones_like(f64))  # per-ion state scale (1 for absent species)
    w = (z.double() * a * m)[:, None]
    u = m[:, None].double() + tau.double()[..., None] * project_electroneutral(du.double(), w, m[:, None])
    return (u * a[:, None] * fmask[..., None].double()).to(dtype)


@dataclass(frozen=True)
class ResNetConfig:
    """width: hidden width; blocks: residual blocks (two linear layers each); flux_degree: Legendre
    encodings of τ; flux_scale: m/s (τ = Jv / flux_scale); species: column order of the feed."""

    width: int = SETTINGS["resnet_width"].default
    blocks: int = 2
    flux_degree: int = 4
    flux_scale: float = FLUX_SCALE_M_S
    species: tuple[str, ...] = field(default_factory=ions.species)
    membrane_code: int = 0  # length of the membrane-code input (0: none; _encoding.MembraneCode)

    def __post_init__(self) -> None:
        object.__setattr__(self, "species", tuple(ions.canonical(s) for s in self.species))
        if self.membrane_code < 0:
            raise ValueError(f"membrane_code must be ≥ 0, got {self.membrane_code}")
        if self.width < 1 or self.blocks < 0 or self.flux_degree < 1:
            raise ValueError(
                f"need width ≥ 1, blocks ≥ 0, flux_degree ≥ 1; got {self.width}, {self.blocks}, {self.flux_degree}"
            )
        if not self.flux_scale > 0:
            raise ValueError(f"flux_scale must be > 0, got {self.flux_scale}")

    @classmethod
    def for_profile(cls, profile: str | Profile, **overrides) -> ResNetConfig:
        """The configuration of a run profile (knob ``resnet_width``: parameter count within ±15 % of the
        neural ODE's, tests/test_baselines.py), with ``overrides``."""
        return replace(cls(width=get(profile).settings.resnet_width), **overrides)


class _Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.a, self.b = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.b(torch.tanh(self.a(torch.tanh(x))))


class ResNet(nn.Module):
    """Residual-MLP baseline; same call and output as :class:`~nanoutils.models.NeuralODE`:
    ``model(feed (B, d) mol/m³, species_mask (B, d), flux (B, K) m/s, flux_mask (B, K) | None)`` → (B, K, d) mol/m³."""

    Config = ResNetConfig
    z: Tensor  # charges (d,), a buffer

    def __init__(self, config: ResNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or ResNetConfig()
        d = len(cfg.species)
        self.register_buffer("z", torch.tensor(ions.charges(cfg.species), dtype=torch.get_default_dtype()))
        self.inp = nn.Linear(2 * d + 1 + cfg.flux_degree + cfg.membrane_code, cfg.width)
        self.code = MembraneCode(cfg.membrane_code) if cfg.membrane_code else None
        self.blocks = nn.Sequential(*[_Block(cfg.width) for _ in range(cfg.blocks)])
        self.out = nn.Linear(cfg.width, d)

    def forward(
        self,
        feed: Tensor,
        species_mask: Tensor,
        flux: Tensor,
        flux_mask: Tensor | None = None,
        code: Tensor | None = None,
    ) -> Tensor:
        cfg, dtype = self.config, self.z.dtype
        tau, fmask = checked_tau(feed, species_mask, flux, flux_mask, cfg.species, cfg.flux_scale, dtype)
        static = with_code(static_features(feed.to(dtype), species_mask, self.z), self.code, code)  # (B, 2d + 1 + C)
        x = torch.cat([static[:, None].expand(-1, tau.shape[1], -1), flux_encoding(tau, cfg.flux_degree)], -1)
        du = self.out(torch.tanh(self.blocks(self.inp(x))))  # (B, K, d)
        return anchored_permeate(feed, species_mask, self.z, du, tau, fmask, dtype)
