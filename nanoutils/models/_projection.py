"""Hard electroneutrality (paper eq. 2, Section 2.1).

A vector v (a derivative dh/dJv, or a prediction) is projected orthogonally to
the valence vector z restricted to the species present:

    z_m = z ⊙ m,    P(v) = v_m − (z_m · v_m / z_m · z_m) z_m,    v_m = v ⊙ m,

so that Σ_j z_j P(v)_j = 0 and P(v)_j = 0 exactly for every absent species j.
Applied to the right-hand side of the neural ODE it keeps Σ z h(Jv) equal to its
value at the feed (0) and absent species at 0 along the whole trajectory; applied
to a direct prediction (ResNet, U-Net, PINN) it makes that prediction neutral.
"""
from __future__ import annotations

import torch
from torch import Tensor


def project_electroneutral(v: Tensor, z: Tensor, mask: Tensor) -> Tensor:
    """Project ``v`` (..., d) orthogonally to ``z`` (d,) on the species where ``mask`` (..., d) is true.

    Units are those of ``v``. Entries of absent species are exactly zero. Where no
    charged species is present the (masked) input is returned unchanged.
    """
    m = mask.to(v.dtype)
    v_m = v * m
    z_m = z.to(v.dtype) * m
    zz = (z_m * z_m).sum(-1, keepdim=True)
    coef = (z_m * v_m).sum(-1, keepdim=True) / torch.where(zz > 0, zz, torch.ones_like(zz))
    return v_m - coef * z_m


def charge_imbalance(c: Tensor, z: Tensor) -> Tensor:
    """Relative net charge |Σ z c| / Σ |z| c over the last axis (dimensionless; 0 where c = 0)."""
    z = z.to(c.dtype)
    net = (c * z).sum(-1).abs()
    total = (c.abs() * z.abs()).sum(-1)
    return net / torch.where(total > 0, total, torch.ones_like(total))
