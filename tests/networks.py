"""Seeded inputs shared by the network tests (test_models, test_baselines)."""

from __future__ import annotations

import torch

from nanoutils import ions, sampling

#: Charge numbers of the whole ion table, float64.
Z = torch.tensor(ions.charges(ions.species()), dtype=torch.float64)


def batch(n: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` seeded Sobol feed compositions (mol/m³) and their species masks."""
    comp = sampling.sobol_compositions(n, seed=seed)
    return torch.tensor(comp.concentration, dtype=dtype), torch.tensor(comp.mask)


def lively(model: torch.nn.Module, gain: float = 3.0) -> torch.nn.Module:
    """Scale the weights up so an untrained model's output moves far from the feed."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
    return model
