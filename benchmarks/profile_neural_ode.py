"""Where a neural ODE training step spends its time, and what a solver setting costs in accuracy.

For a trained checkpoint and a pre-training set, on a fixed set of training batches (the same for every
variant, all variants in one process so their ratios are comparable on a shared machine):

* per batch: forward + backward seconds, f evaluations of the forward solve (with rejected steps), accepted and
  rejected steps (counted by the fused solver only), the accepted step sizes along τ, and the split of the forward
  time between the network (layers 2…depth with their activations), the rest of f (the split first layer, flux
  encoding, projection) and the solver's own bookkeeping;
* on the held-out (test) split: the largest and mean difference in rejection from a float64 dopri5 solve at
  rtol 1e-7, atol 1e-9 (``--reference-rtol``; per-sample norm) of the same weights (the solver's error), and
  the held-out rejection MAE against the simulated labels with its bootstrap interval (``metrics.rejection_error``).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/profile_neural_ode.py DATA.npz CHECKPOINT:VARIANT ... \\
        [--batches 20] [--batch-size 32] [--stiffness-penalty MU]

VARIANT is a name in :data:`VARIANTS` (solver settings applied to the checkpoint's weights); with
``--stiffness-penalty`` the timed loss includes ``NeuralODE.stiffness`` (the training loss of a penalised profile).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nanoutils import metrics, models, pretraining_set, training
from nanoutils.models._dopri5 import SolveStats

#: Solver settings compared, as NeuralODEConfig overrides.
VARIANTS: dict[str, dict] = {
    "rms-1e-4": {"method": "dopri5", "step_size": None, "error_norm": "rms", "rtol": 1e-4, "atol": 1e-6},
    "per-sample-1e-4": {"method": "dopri5", "step_size": None, "error_norm": "per_sample", "rtol": 1e-4, "atol": 1e-6},
    "per-sample-1e-3": {"method": "dopri5", "step_size": None, "error_norm": "per_sample", "rtol": 1e-3, "atol": 1e-4},
    "rk4-0.1": {"method": "rk4", "step_size": 0.1, "error_norm": "rms"},
}


def with_solver(model: torch.nn.Module, **changes) -> torch.nn.Module:
    """A copy of ``model`` with other solver settings (same weights and dtype)."""
    clone = models.from_spec({"name": "neural_ode", "config": {**models.spec(model)["config"], **changes}})
    clone.load_state_dict(model.state_dict())
    return clone.to(next(model.parameters()).dtype)


class Timer:
    """Seconds spent inside the modules (forward hooks) or the function (a wrapper) it was put on."""

    def __init__(self) -> None:
        self.seconds, self._t0 = 0.0, 0.0

    def modules(self, modules) -> Timer:
        for m in modules:
            m.register_forward_pre_hook(self._pre)
            m.register_forward_hook(self._post)
        return self

    def wrap(self, fn):
        def timed(*a, **k):
            self._pre()
            out = fn(*a, **k)
            self._post()
            return out

        return timed

    def _pre(self, *_):
        self._t0 = time.perf_counter()

    def _post(self, *_):
        self.seconds += time.perf_counter() - self._t0


def profile_batches(model, data: training.TransportData, n_batches: int, batch_size: int) -> dict[str, float]:
    """Per-batch means over the first ``n_batches`` of a fixed shuffle (seed 0) of ``data``."""
    t = training._tensors(data, torch.device("cpu"), next(model.parameters()).dtype)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    net, dyn = Timer().modules(model.func.net[1:]), Timer()  # layers 2…depth; the split first layer counts as f
    model.func.bound = dyn.wrap(model.func.bound)
    rows = []
    for i in range(n_batches + 1):  # the first one warms up
        b = {k: v[order[i * batch_size : (i + 1) * batch_size]] for k, v in t.items()}
        net.seconds = dyn.seconds = 0.0
        model.func.nfe, model.stats = 0, SolveStats()
        t0 = time.perf_counter()
        loss = training._loss(model, b, b["permeate"])
        t1 = time.perf_counter()
        nfe_fwd = model.func.nfe
        model.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        st = model.stats
        if i:
            rows.append(
                {
                    "s_batch": t2 - t0,
                    "s_forward": t1 - t0,
                    "s_backward": t2 - t1,
                    "s_network": net.seconds,
                    "s_rest_of_f": dyn.seconds - net.seconds,
                    "s_solver": (t1 - t0) - dyn.seconds,
                    "nfe_fwd": nfe_fwd,
                    "accepted": st.accepted,
                    "rejected": st.rejected,
                    "dt_min": min(st.steps, default=float("nan")),
                    "dt_median": float(np.median(st.steps)) if st.steps else float("nan"),
                }
            )
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def accuracy(model, reference: np.ndarray, test: training.TransportData) -> dict[str, float]:
    """Solver error in R against ``reference`` (same weights, tight solve) and the held-out MAE vs the labels."""
    pred = training.predict_dataset(model, test, batch_size=256).double().numpy()
    sel = test.target_mask
    scale = np.where(test.species_mask, test.feed, 1.0)[:, None, :]
    d = (np.abs(pred - reference) / scale)[sel]
    score = metrics.rejection_error(test.to_frame(pred.astype(np.float32)))
    return {"solver_err_max": d.max(), "solver_err_mean": d.mean(), "mae_pp": score.value, "ci": score.ci}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("runs", nargs="+", metavar="CHECKPOINT:VARIANT")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stiffness-penalty", type=float, nargs="*", default=None, help="one weight per run")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--reference-rtol", type=float, default=1e-7, help="of the float64 reference (atol = rtol/100)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parts = pretraining_set.split(training.TransportData.load(args.data))
    mus = args.stiffness_penalty or [0.0] * len(args.runs)
    print(f"{args.batches} batches of {args.batch_size}; {args.threads} threads")
    for run, mu in zip(args.runs, mus, strict=True):
        path, variant = run.rsplit(":", 1)
        base = training.load_model(path)
        model = with_solver(base, **VARIANTS[variant], stiffness_penalty=mu)
        r = profile_batches(model, parts["train"], args.batches, args.batch_size)
        line = (
            f"{path} [{variant}, stiffness penalty {mu:g}; {models.n_parameters(model):,} parameters]: "
            f"{r['s_batch']:.3f} s/batch (fwd {r['s_forward']:.3f}: network {r['s_network']:.3f}, rest of f "
            f"{r['s_rest_of_f']:.3f}, solver {r['s_solver']:.3f}; bwd {r['s_backward']:.3f}); NFE fwd "
            f"{r['nfe_fwd']:.1f}, accepted {r['accepted']:.1f}, rejected {r['rejected']:.1f}, dt min "
            f"{r['dt_min']:.3f} median {r['dt_median']:.3f}"
        )
        if not args.no_accuracy:
            tol = {"rtol": args.reference_rtol, "atol": args.reference_rtol / 100}
            tight = with_solver(base, method="dopri5", step_size=None, error_norm="per_sample", **tol)
            ref = training.predict_dataset(tight.double(), parts["test"], batch_size=256).numpy()
            a = accuracy(model, ref, parts["test"])
            line += (
                f"; test: solver error in R max {a['solver_err_max']:.1e} mean {a['solver_err_mean']:.1e}, "
                f"MAE {a['mae_pp']:.3f} pp [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}]"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
