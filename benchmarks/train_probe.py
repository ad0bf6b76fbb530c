"""Train the paper-size neural ODE for a few batches and watch its dopri5 step count grow (or not).

Adam (lr 1e-3, batch 32, seed 0, 1 thread) on the train split of a pre-training set, with the paper profile's
model and the given stiffness penalty and solver overrides (JSON); every 25 batches it saves the weights to
``runs/speed/NAME_STEP.pt`` and prints the loss, the mean forward NFE of the last 25 batches (at the run's own
solver) and a "probe" NFE: the first 32 test compositions solved with per-sample dopri5 at rtol 1e-4 (a fixed ruler
for the field's stiffness).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/train_probe.py NAME MU STEPS SOLVER_JSON [DATA.npz]
    # e.g. jac4_ps3 1e-4 100 '{"error_norm": "per_sample", "rtol": 1e-3, "atol": 1e-4}'
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nanoutils import env, models, pretraining_set, training
from nanoutils.models._dopri5 import SolveStats

PROBE = {"method": "dopri5", "step_size": None, "error_norm": "per_sample", "rtol": 1e-4, "atol": 1e-6}


def probe(model, t: dict[str, torch.Tensor]) -> int:
    """Forward NFE of the first 32 test compositions at the :data:`PROBE` solver."""
    q = models.from_spec({"name": "neural_ode", "config": {**models.spec(model)["config"], **PROBE}})
    q.load_state_dict(model.state_dict())
    q.stats = SolveStats()
    with torch.no_grad():
        q(t["feed"][:32], t["species_mask"][:32], t["flux"][:32], t["flux_mask"][:32])
    return q.stats.nfe


def main() -> None:
    name, mu, n_steps, solver = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
    data = sys.argv[5] if len(sys.argv) > 5 else "runs/default/data/pretraining.npz"
    torch.set_num_threads(1)
    parts = pretraining_set.split(training.TransportData.load(data))
    env.seed_everything(0)
    model = models.build("neural_ode", "paper", stiffness_penalty=mu, **solver)
    t = training._tensors(parts["train"], torch.device("cpu"), torch.float32)
    test = training._tensors(parts["test"], torch.device("cpu"), torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = Path("runs/speed")
    out.mkdir(parents=True, exist_ok=True)
    n, step, t0, nfes = len(parts["train"]), 0, time.time(), []
    for epoch in range(10_000):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
        for s in range(0, n - 31, 32):
            b = {k: v[order[s : s + 32]] for k, v in t.items()}
            model.func.nfe = 0
            loss = training._loss(model, b, b["permeate"])
            nfes.append(model.func.nfe)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 25 == 0:
                training.save_model(model, out / f"{name}_{step}.pt")
                print(
                    f"{step} loss {loss.item():.4g} train NFE (last 25) {np.mean(nfes[-25:]):.0f} "
                    f"probe NFE {probe(model, test)} total {time.time() - t0:.0f} s",
                    flush=True,
                )
            if step >= n_steps:
                return


if __name__ == "__main__":
    main()
