"""The learned field's contraction rate along τ, and dopri5's step count against the tolerance.

For a neural ODE checkpoint and the first 32 test compositions of a pre-training set (float64, per-sample dopri5):
the largest eigenvalue modulus |λ| of ∂f/∂u on each sample's present species at 21 τ (max and median over the
samples), the accepted steps and h · |λ|max; then the forward NFE, accepted and rejected steps at four tolerances.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/stiffness_probe.py CHECKPOINT [DATA.npz]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from nanoutils import models, pretraining_set, training
from nanoutils.models._dopri5 import SolveStats

TOLERANCES = ((1e-4, 1e-6), (1e-3, 1e-4), (1e-2, 1e-3), (1e-1, 1e-2))


def with_solver(base, **kw):
    cfg = {**models.spec(base)["config"], "method": "dopri5", "step_size": None, "error_norm": "per_sample", **kw}
    m = models.from_spec({"name": "neural_ode", "config": cfg})
    m.load_state_dict(base.state_dict())
    return m


def main() -> None:
    path = sys.argv[1]
    data = sys.argv[2] if len(sys.argv) > 2 else "runs/default/data/pretraining.npz"
    torch.set_num_threads(1)
    test = pretraining_set.split(training.TransportData.load(data))["test"]
    base = training.load_model(path)
    m = with_solver(base).double()
    t = training._tensors(test, torch.device("cpu"), torch.float64)
    feed, mask = t["feed"][:32], t["species_mask"][:32].double()
    f, a = m._bind(feed, mask)
    grid = torch.linspace(0, 1, 21, dtype=torch.float64)
    m.stats = SolveStats()
    with torch.no_grad():
        sol = m._solve(f, feed * mask / a, grid)
    lam = np.zeros((len(grid), len(feed)))
    for k, tau in enumerate(grid):
        jac = torch.autograd.functional.jacobian(lambda v, tau=tau: f(tau, v).sum(0), sol[k]).permute(1, 0, 2)
        for b in range(len(feed)):
            idx = mask[b].bool().nonzero().ravel()
            lam[k, b] = torch.linalg.eigvals(jac[b][idx][:, idx]).abs().max().item()
    h = float(np.median(m.stats.steps))
    print(f"{path}: NFE {m.stats.nfe}, accepted {m.stats.accepted}, rejected {m.stats.rejected}, median h {h:.3f}")
    print("  max |λ| along τ:", np.round(lam.max(1), 1).tolist())
    print("  median |λ| along τ:", np.round(np.median(lam, 1), 1).tolist())
    print("  h · max |λ|:", np.round(h * lam.max(1), 2).tolist())
    t32 = training._tensors(test, torch.device("cpu"), torch.float32)
    for rtol, atol in TOLERANCES:
        q = with_solver(base, rtol=rtol, atol=atol)
        q.stats = SolveStats()
        with torch.no_grad():
            q(t32["feed"][:32], t32["species_mask"][:32], t32["flux"][:32], t32["flux_mask"][:32])
        s = q.stats
        print(
            f"  rtol {rtol:g} atol {atol:g}: NFE {s.nfe}, accepted {s.accepted}, rejected {s.rejected}, "
            f"median h {np.median(s.steps):.4f}"
        )


if __name__ == "__main__":
    main()
