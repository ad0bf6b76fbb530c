"""DSPM-DE as a differentiable torch function of the membrane (float64), so a network can sit upstream.

The forward pass is the batched numpy solver; the backward pass uses the implicit-differentiation
sensitivities of :mod:`._grad` (no differentiation through the Newton iterations).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ._film import Film
from ._grad import QUANTITIES, sensitivities
from ._isotherm import ChargeIsotherm, IsothermError
from ._membrane import Membrane, MembraneError
from ._setup import as_concentrations, as_fluxes, check_pore_model, check_temperature
from ._solver import DEFAULT_CELLS, ConvergenceWarning


class _Permeate(torch.autograd.Function):
    """params (N, 4), dW (N, d) → permeate (N, M, d); ``run`` maps numpy inputs to (permeate, sensitivities)."""

    @staticmethod
    def forward(ctx, params: torch.Tensor, dW: torch.Tensor, run) -> torch.Tensor:
        permeate, sens = run(params.detach().cpu().numpy(), dW.detach().cpu().numpy())
        ctx.save_for_backward(torch.from_numpy(sens))
        return torch.from_numpy(permeate)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (sens,) = ctx.saved_tensors
        g = grad[..., None]
        # entries the loss does not use (zero cotangent) add nothing, even where unconverged (NaN)
        total = torch.where(g != 0, g * sens, torch.zeros((), dtype=sens.dtype)).sum(dim=(1, 2))
        n = len(QUANTITIES)
        return total[:, :n], total[:, n:], None


def _per_feed(value: torch.Tensor, n: int, width: int, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(value).__name__}")
    if value.shape not in ((width,), (n, width)):
        raise ValueError(f"{name} must have shape ({width},) or ({n}, {width}), got {tuple(value.shape)}")
    return value.to(torch.float64).expand(n, width)


def solve_torch(
    feeds,
    fluxes,
    params: torch.Tensor,
    *,
    dW: torch.Tensor | None = None,
    species: Sequence[str] | None = None,
    membrane: Membrane | None = None,
    film: Film | None = None,
    isotherm: ChargeIsotherm | None = None,
    temperature: float = 298.15,
    temperature_model: str = "none",
    n_cells: int = DEFAULT_CELLS,
    pore: str = "nernst_planck",
    tol: float = 1e-8,
) -> torch.Tensor:
    """Permeate concentrations (N, M, d) in mol/m³ of N feeds at M fluxes (m/s), as a float64 tensor
    differentiable with respect to ``params`` and ``dW``.

    ``params``: (4,) shared or (N, 4) per feed — r_p (m), Δx_e (m), ε_p (–), X_d (mol/m³).
    ``dW``: (d,) or (N, d) partition energies ΔW_i/(k_B T) added at both pore ends (default 0).
    ``membrane`` supplies ε_b, ε_m and the hindrance source (default :meth:`Membrane.nf270`);
    ``isotherm`` maps X_d to each feed's charge (every kind is affine in X_d, so dX/dX_d is exact).
    Feeds, fluxes, species, film, temperature, n_cells and pore as in :func:`solve` (ideal
    activities, no image forces). The rejection 1 − c_p/c_f follows differentiably in torch.
    Cases that do not converge have NaN permeate and NaN gradients
    (a :class:`ConvergenceWarning` counts them); a loss that leaves them out (zero cotangent) gets
    finite gradients from the others.
    """
    c_feed, names = as_concentrations(feeds, species)
    jv = as_fluxes(fluxes)
    temperature = check_temperature(temperature)
    n_cells = check_pore_model(pore, n_cells)
    template = Membrane.nf270() if membrane is None else membrane
    if not isinstance(template, Membrane):
        raise MembraneError(f"membrane must be a dspmde.Membrane, got {template!r}")
    isotherm = ChargeIsotherm() if isotherm is None else isotherm
    if not isinstance(isotherm, ChargeIsotherm):
        raise IsothermError(f"isotherm must be a dspmde.ChargeIsotherm or None, got {isotherm!r}")
    n, m, d = len(c_feed), len(jv), len(names)
    p = _per_feed(params, n, len(QUANTITIES), "params")
    w = _per_feed(torch.zeros(d, dtype=torch.float64) if dW is None else dW, n, d, "dW")

    def run(p_np: np.ndarray, w_np: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        permeate, sens = np.empty((n, m, d)), np.empty((n, m, d, len(QUANTITIES) + d))
        rows, group = np.unique(np.concatenate([p_np, w_np], axis=1), axis=0, return_inverse=True)
        for g, row in enumerate(rows):  # feeds sharing a membrane are solved in one batch
            idx = np.flatnonzero(group.ravel() == g)
            mem = template.with_(**dict(zip(("r_p", "dx_e", "eps_p", "X_d"), map(float, row[:4]), strict=True)))
            x = isotherm.charge(mem.X_d, c_feed[idx], names)
            slope = isotherm.charge(1.0, c_feed[idx], names) - isotherm.charge(0.0, c_feed[idx], names)
            res = sensitivities(
                np.repeat(c_feed[idx], m, axis=0),
                np.tile(jv, len(idx)),
                mem,
                names,
                X=np.repeat(x, m),
                dW=np.repeat(row[None, 4:], len(idx) * m, axis=0),
                film=film,
                n_cells=n_cells,
                temperature=temperature,
                temperature_model=temperature_model,
                pore_model=pore,
                tol=tol,
            )
            permeate[idx] = res.permeate.reshape(len(idx), m, d)
            sens[idx] = res.d_permeate.reshape(len(idx), m, d, -1)
            sens[idx, ..., 3] *= slope[:, None, None]
        n_failed = int(np.isnan(permeate).any(axis=2).sum())
        if n_failed:
            warnings.warn(
                f"DSPM-DE: {n_failed} of {n * m} cases did not converge (NaN permeate and gradients)",
                ConvergenceWarning,
                stacklevel=4,
            )
        return permeate, sens

    return _Permeate.apply(p, w, run)
