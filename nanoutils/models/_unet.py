"""U-Net baseline: a 1-D encoder–decoder over a fixed flux grid (a Table 1 row).

The signal is the flux grid τ_g = g / (G − 1) · grid_max, g = 0…G−1 (τ = Jv / flux_scale, G =
``grid_points``), with channels [per-sample static features (``_encoding.static_features``,
repeated along the grid), Legendre(τ_g)]. ``levels`` encoder stages (two 3-wide convolutions with
tanh, then ×½ average pooling; channels width·2^l) reach a bottleneck, and the decoder mirrors them
(linear ×2 upsampling, a convolution, concatenation with the encoder's skip, two convolutions); a
1×1 convolution gives Δu (B, d, G). Δu is interpolated linearly in τ to each requested flux (held
at its end value beyond grid_max) and anchored and projected exactly as the ResNet's:
c = c_f ⊙ (1 + τ P_w,m(Δu(τ))), so c(0) = c_f, Σ z c = Σ z c_f and absent species are 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import ions
from ..profiles import SETTINGS, Profile, get
from ._encoding import FLUX_SCALE_M_S, MembraneCode, checked_tau, flux_encoding, static_features, with_code
from ._resnet import anchored_permeate


@dataclass(frozen=True)
class UNetConfig:
    """width: channels of the first level (doubling per level); levels: down-sampling stages;
    grid_points: G (divisible by 2^levels); grid_max: the grid's last τ; flux_degree: Legendre
    encodings; flux_scale: m/s; species: feed column order."""

    width: int = SETTINGS["unet_width"].default
    levels: int = 2
    grid_points: int = 16
    grid_max: float = 1.0
    flux_degree: int = 4
    flux_scale: float = FLUX_SCALE_M_S
    species: tuple[str, ...] = field(default_factory=ions.species)
    membrane_code: int = 0  # length of the membrane-code input (0: none; _encoding.MembraneCode)

    def __post_init__(self) -> None:
        object.__setattr__(self, "species", tuple(ions.canonical(s) for s in self.species))
        if self.membrane_code < 0:
            raise ValueError(f"membrane_code must be ≥ 0, got {self.membrane_code}")
        if self.width < 1 or self.levels < 1 or self.flux_degree < 1:
            raise ValueError(
                f"need width ≥ 1, levels ≥ 1, flux_degree ≥ 1; got {self.width}, {self.levels}, {self.flux_degree}"
            )
        if self.grid_points < 2 or self.grid_points % 2**self.levels:
            raise ValueError(
                f"grid_points must be ≥ 2 and divisible by 2^levels = {2**self.levels}, got {self.grid_points}"
            )
        if not self.flux_scale > 0 or not self.grid_max > 0:
            raise ValueError(f"flux_scale and grid_max must be > 0, got {self.flux_scale}, {self.grid_max}")

    @classmethod
    def for_profile(cls, profile: str | Profile, **overrides) -> UNetConfig:
        """The configuration of a run profile (knob ``unet_width``), with ``overrides``."""
        return replace(cls(width=get(profile).settings.unet_width), **overrides)


def _double_conv(a: int, b: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(a, b, 3, padding=1), nn.Tanh(), nn.Conv1d(b, b, 3, padding=1), nn.Tanh())


class UNet(nn.Module):
    """1-D U-Net baseline; same call and output as :class:`~nanoutils.models.NeuralODE`:
    ``model(feed (B, d) mol/m³, species_mask (B, d), flux (B, K) m/s, flux_mask (B, K) | None)`` → (B, K, d) mol/m³."""

    Config = UNetConfig
    z: Tensor  # charges (d,), a buffer

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or UNetConfig()
        d = len(cfg.species)
        self.register_buffer("z", torch.tensor(ions.charges(cfg.species), dtype=torch.get_default_dtype()))
        ch = [cfg.width * 2**level for level in range(cfg.levels + 1)]
        self.down = nn.ModuleList(
            [_double_conv(2 * d + 1 + cfg.flux_degree + cfg.membrane_code, ch[0])]
            + [_double_conv(ch[i], ch[i + 1]) for i in range(cfg.levels)]
        )
        self.up = nn.ModuleList([nn.Conv1d(ch[i + 1], ch[i], 3, padding=1) for i in reversed(range(cfg.levels))])
        self.dec = nn.ModuleList([_double_conv(2 * ch[i], ch[i]) for i in reversed(range(cfg.levels))])
        self.head = nn.Conv1d(ch[0], d, 1)
        self.code = MembraneCode(cfg.membrane_code) if cfg.membrane_code else None

    @property
    def grid(self) -> Tensor:
        """The flux grid τ_g (G,), dimensionless, in the model's dtype."""
        cfg = self.config
        return torch.linspace(0, cfg.grid_max, cfg.grid_points, dtype=self.z.dtype, device=self.z.device)

    def grid_output(self, feed: Tensor, species_mask: Tensor, code: Tensor | None = None) -> Tensor:
        """Δu on the flux grid, (B, d, G); feed in mol/m³ (already checked), code (B, C) or None."""
        cfg, dtype = self.config, self.z.dtype
        static = with_code(static_features(feed.to(dtype), species_mask, self.z), self.code, code)
        enc = flux_encoding(self.grid, cfg.flux_degree).T  # (degree, G)
        x = torch.cat([static[:, :, None].expand(-1, -1, cfg.grid_points), enc[None].expand(len(feed), -1, -1)], 1)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.avg_pool1d(x, 2))
            skips.append(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips[:-1]), strict=True):
            x = up(F.interpolate(x, scale_factor=2, mode="linear", align_corners=False))
            x = dec(torch.cat([x, skip], 1))
        return self.head(x)

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
        g = self.grid_output(feed, species_mask, code)  # (B, d, G)
        pos = tau.clamp(0, cfg.grid_max) / cfg.grid_max * (cfg.grid_points - 1)  # fractional grid index (B, K)
        lo = pos.floor().long().clamp(max=cfg.grid_points - 2)
        frac = (pos - lo.to(dtype))[:, None]  # (B, 1, K)
        left = torch.gather(g, 2, lo[:, None].expand(-1, g.shape[1], -1))
        right = torch.gather(g, 2, (lo + 1)[:, None].expand(-1, g.shape[1], -1))
        du = (left + frac * (right - left)).transpose(1, 2)  # (B, K, d)
        return anchored_permeate(feed, species_mask, self.z, du, tau, fmask, dtype)
