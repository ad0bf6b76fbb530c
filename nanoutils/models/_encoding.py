"""Model inputs: validation, per-sample scaling and flux encodings.

Scaling (shared by every learned model):

* concentrations are divided by the feed's total equivalent concentration
  ``s = ½ Σ_j |z_j| c_f,j`` (mol/m³, one positive scalar per sample), so the
  scaled feed satisfies ``Σ |z| u = 2`` whatever its salinity (0.1–1000 mol/m³ per
  ion), and a linear constraint such as ``Σ z u = 0`` is untouched by the scaling;
* the salinity itself, which DSPM-DE-like physics depends on (Donnan exclusion
  weakens as s grows past the membrane charge), is passed as one extra feature
  ``(log10 s − 1.5) / 2``, ≈ [−1.25, 1.2] over the sampled range;
* each present ion's own feed concentration, as ``(log10 c_f,j − 1) / 2`` ∈ [−1, 1]
  over 0.1–1000 mol/m³ (0 for absent species; the mask tells them apart), so a
  model whose state is scaled per ion (u_j = c_j / c_f,j) still sees the
  composition (:func:`log_feed_feature`);
* the flux is non-dimensionalised as ``τ = Jv / FLUX_SCALE_M_S`` with
  ``FLUX_SCALE_M_S = 6e-5`` m/s (216 LMH, above every NF270 flux of the measured sets:
  5.6e-5 m/s in FdL 2021), equal to the pre-training grid's top ``sampling.J_MAX_M_S``, so τ ∈ [0, 1]
  on the training grid (a neural ODE integrated past τ = 1 is extrapolating); its positional encoding is the shifted
  Legendre
  polynomials ``P_k(2τ − 1)``, k = 1…degree (bounded by 1 on [0, 1]);
* a membrane-aware model (config ``membrane_code`` = C > 0) also takes the membrane's code, C scaled physical
  parameters in [−1, 1] over the membrane family's prior (:mod:`nanoutils.membrane_family`), appended to the
  per-sample features (:class:`MembraneCode`). A model with C = 0 has exactly the inputs and weights it had before.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._inputs import ModelInputError as ModelInputError
from .._inputs import check_inputs as check_inputs

FLUX_SCALE_M_S = 6e-5  # m/s (= 216 LMH) = sampling.J_MAX_M_S; τ = Jv / FLUX_SCALE_M_S
_LOG_SCALE_CENTER, _LOG_SCALE_WIDTH = 1.5, 2.0
_LOG_FEED_CENTER, _LOG_FEED_WIDTH = 1.0, 2.0


def equivalent_scale(feed: Tensor, z: Tensor, mask: Tensor) -> Tensor:
    """Per-sample scale ``s = ½ Σ |z| c`` over present species (mol/m³), shape (B,)."""
    return 0.5 * (feed * mask.to(feed.dtype) * z.to(feed.dtype).abs()).sum(-1)


def scale_feature(s: Tensor) -> Tensor:
    """Salinity feature ``(log10 s − 1.5) / 2`` for a scale s in mol/m³, shape (B, 1)."""
    return ((torch.log10(s) - _LOG_SCALE_CENTER) / _LOG_SCALE_WIDTH).unsqueeze(-1)


def log_feed_feature(feed: Tensor, mask: Tensor) -> Tensor:
    """Per-ion feed feature ``(log10 c_f − 1) / 2`` (c_f in mol/m³) on present species, exactly 0 elsewhere; (B, d)."""
    present = mask.bool() & (feed > 0)
    safe = torch.where(present, feed, torch.ones_like(feed))
    return torch.where(present, (torch.log10(safe) - _LOG_FEED_CENTER) / _LOG_FEED_WIDTH, torch.zeros_like(feed))


def flux_encoding(tau: Tensor, degree: int) -> Tensor:
    """Shifted Legendre polynomials P_1…P_degree of ``2τ − 1`` for a dimensionless flux τ; shape (*tau.shape,
    degree)."""
    x = 2.0 * tau - 1.0
    p_prev, p = torch.ones_like(x), x
    out = [p]
    for n in range(1, degree):
        p_prev, p = p, ((2 * n + 1) * x * p - n * p_prev) / (n + 1)
        out.append(p)
    return torch.stack(out[:degree], dim=-1)


def checked_tau(
    feed: Tensor,
    species_mask: Tensor,
    flux: Tensor,
    flux_mask: Tensor | None,
    species: Sequence[str],
    flux_scale: float,
    dtype: torch.dtype,
) -> tuple[Tensor, Tensor]:
    """Check a model's inputs (:func:`check_inputs`) and return the dimensionless flux τ = Jv / ``flux_scale``
    (B, K) in ``dtype`` (0 at padded points) and the flux mask (B, K) bool."""
    check_inputs(feed, species_mask, flux, flux_mask, species)
    fmask = torch.ones_like(flux, dtype=torch.bool) if flux_mask is None else flux_mask.bool()
    return torch.where(fmask, flux.to(dtype) / flux_scale, torch.zeros((), dtype=dtype, device=flux.device)), fmask


class MembraneCode(nn.Module):
    """The membrane-code input of a membrane-aware model: the batch's codes (B, C), or the model's own code
    ``own`` (C,) — a parameter: the membrane it is calibrated to, inferred by gradients on it alone — for a batch
    without codes or for rows of NaN (measured feeds of that membrane mixed with simulated ones)."""

    def __init__(self, n_code: int):
        super().__init__()
        if n_code < 1:
            raise ValueError(f"a membrane code needs ≥ 1 entry, got {n_code}")
        self.own = nn.Parameter(torch.zeros(n_code))

    def forward(self, code: Tensor | None, batch: int, dtype: torch.dtype) -> Tensor:
        own = self.own.to(dtype)
        if code is None:
            return own.expand(batch, -1)
        if code.shape != (batch, own.numel()):
            raise ModelInputError(f"membrane code must have shape ({batch}, {own.numel()}), got {tuple(code.shape)}")
        code = code.to(dtype)
        return torch.where(torch.isnan(code), own.expand_as(code), code)


def with_code(features: Tensor, code_input: MembraneCode | None, code: Tensor | None) -> Tensor:
    """Per-sample ``features`` (B, F) with the membrane code appended (B, F + C) for a membrane-aware model;
    unchanged for a model without one (then ``code`` must be None)."""
    if code_input is None:
        if code is not None:
            raise ModelInputError("a membrane code was given to a model without a membrane-code input")
        return features
    return torch.cat([features, code_input(code, features.shape[0], features.dtype)], dim=-1)


def static_features(feed: Tensor, mask: Tensor, z: Tensor) -> Tensor:
    """Per-sample inputs of a direct (non-ODE) model, (B, 2d + 1): the species mask, the per-ion
    :func:`log_feed_feature` and the salinity :func:`scale_feature` of s = ½ Σ |z| c_f (feed in mol/m³)."""
    m = mask.to(feed.dtype)
    return torch.cat([m, log_feed_feature(feed, m), scale_feature(equivalent_scale(feed, z, m))], dim=-1)
