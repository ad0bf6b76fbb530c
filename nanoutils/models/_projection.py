"""Hard electroneutrality (paper eq. 2, Section 2.1).

A vector v (a derivative dh/dJv, or a prediction) is projected orthogonally to
a charge vector w restricted to the species present:

    w_m = w ⊙ m,    P(v) = v_m − (w_m · v_m / w_m · w_m) w_m,    v_m = v ⊙ m,

so that Σ_j w_j P(v)_j = 0 and P(v)_j = 0 exactly for every absent species j.
For a state in concentrations (the paper's h = c) w is the valence vector z; for
a state scaled per ion, u_j = c_j / a_j, it is w = z ⊙ a (one row per sample),
since Σ z_j c_j = Σ (z_j a_j) u_j. ``w`` is normalised by its largest entry first,
which changes nothing in exact arithmetic and keeps float32 well scaled when a
spans orders of magnitude.
Applied to the right-hand side of the neural ODE it keeps Σ z h(Jv) equal to its
value at the feed (0) and absent species at 0 along the whole trajectory; applied
to a direct prediction (ResNet, U-Net, PINN) it makes that prediction neutral.
"""

from __future__ import annotations

import torch
from torch import Tensor


def project_electroneutral(v: Tensor, z: Tensor, mask: Tensor) -> Tensor:
    """Project ``v`` (..., d) orthogonally to ``z`` ((d,) valences, or (..., d) per-sample charge
    weights z ⊙ a) on the species where ``mask`` (..., d) is true.

    Units are those of ``v``. Entries of absent species are exactly zero. Where no
    charged species is present the (masked) input is returned unchanged.
    """
    return project_onto(v, unit_charge_direction(z.to(v.dtype), mask), mask)


def unit_charge_direction(z: Tensor, mask: Tensor) -> Tensor:
    """The charge weights on the present species scaled to unit length, z_m / |z_m| (..., d), 0 where no
    charged species is present: what :func:`project_onto` needs, computed once for many projections."""
    z_m = z * mask.to(z.dtype)
    big = z_m.abs().amax(-1, keepdim=True)  # scaled by the largest entry first: no float32 under/overflow
    z_m = z_m / torch.where(big > 0, big, torch.ones_like(big))
    norm = z_m.norm(dim=-1, keepdim=True)
    return z_m / torch.where(norm > 0, norm, torch.ones_like(norm))


def project_onto(v: Tensor, unit: Tensor, mask: Tensor) -> Tensor:
    """v ⊙ m minus its component along the unit vector ``unit`` (from :func:`unit_charge_direction`)."""
    v_m = v * mask.to(v.dtype)
    unit = unit.to(v.dtype)
    return v_m - (unit * v_m).sum(-1, keepdim=True) * unit


def charge_imbalance(c: Tensor, z: Tensor) -> Tensor:
    """Relative net charge |Σ z c| / Σ |z| c over the last axis (dimensionless; 0 where c = 0)."""
    z = z.to(c.dtype)
    net = (c * z).sum(-1).abs()
    total = (c.abs() * z.abs()).sum(-1)
    return net / torch.where(total > 0, total, torch.ones_like(total))
