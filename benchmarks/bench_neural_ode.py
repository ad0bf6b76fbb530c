"""Neural ODE training cost: seconds per batch (32 feeds × 8 fluxes, forward + backward) on CPU.

Sizes: the default and paper profiles, per-ion state (u = c / c_f, the default). Variants:
dopri5 with direct backprop,
dopri5 with the continuous adjoint (seminorm step control, and the plain norm),
and fixed-step rk4 at the largest step whose error is no worse than dopri5's
(both against a dopri5 rtol=1e-9 float64 reference), direct and adjoint, and rk4 with
step 0.1 in τ (the smoke/default profiles' training solver). All
variants run in one process on the same batch, so their ratios are comparable.
Projected wall time = s/batch × batches/epoch × the profile's epochs.

Caveat: the networks are untrained; trained dynamics are usually stiffer and
dopri5 then takes more steps (the NFE column lets you rescale).

    .venv/bin/python benchmarks/bench_neural_ode.py [--threads 2] [--reps 5]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from nanoutils import env, models, profiles, sampling, training

STEPS = (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32)


def batch(n: int = 32, k: int = 8, dtype=torch.float32):
    comp = sampling.sobol_compositions(n, seed=0)
    feed = torch.tensor(comp.concentration, dtype=dtype)
    flux = torch.tensor(sampling.flux_grid(k), dtype=dtype).expand(n, -1)
    return feed, torch.tensor(comp.mask), flux


def solve(model, feed, mask, flux):
    """The model's scaled state u = c / a (a = c_f per ion for the default state)."""
    with torch.no_grad():
        return model(feed, mask, flux) / model.state_scale(feed, mask)[:, None, :]


def matched_rk4_step(model) -> tuple[float, float, float]:
    """Largest rk4 step (in τ = Jv / 3e-5 m/s) with max error ≤ dopri5's at the default tolerances."""
    f64 = copy.deepcopy(model).double()
    feed, mask, flux = batch(dtype=torch.float64)
    ref = solve(_with(f64, rtol=1e-9, atol=1e-11), feed, mask, flux)
    err_dopri = float((solve(f64, feed, mask, flux) - ref).abs().max())
    best, err_best = STEPS[-1], float("nan")
    for h in STEPS:
        err = float((solve(_with(f64, method="rk4", step_size=h), feed, mask, flux) - ref).abs().max())
        if err <= err_dopri:
            best, err_best = h, err
            break
    return best, err_dopri, err_best


def _with(model, **changes):
    changes = {"error_norm": "rms", **changes}  # torchdiffeq for every variant (the adjoint needs it)
    clone = models.from_spec({"name": "neural_ode", "config": {**models.spec(model)["config"], **changes}})
    clone.load_state_dict(model.state_dict())
    return clone.to(next(model.parameters()).dtype)


def time_variant(model, reps: int, n: int = 32, k: int = 8) -> tuple[float, float, float]:
    """(median s per forward+backward of n feeds × k fluxes, forward NFE, total NFE) over ``reps`` after one warm-up."""
    feed, mask, flux = batch(n, k)
    target = 0.5 * feed[:, None, :].expand(-1, flux.shape[1], -1)
    scale = model.state_scale(feed, mask)
    tmask = mask[:, None, :].expand_as(target)
    times, nfe_fwd, nfe_all = [], [], []
    for i in range(reps + 1):
        model.zero_grad()
        model.func.nfe = 0
        t0 = time.perf_counter()
        pred = model(feed, mask, flux)
        n_fwd = model.func.nfe
        training.masked_mse(pred, target, scale, tmask, torch.ones(len(feed))).backward()
        if i:
            times.append(time.perf_counter() - t0)
            nfe_fwd.append(n_fwd)
            nfe_all.append(model.func.nfe)
    return sorted(times)[len(times) // 2], sum(nfe_fwd) / reps, sum(nfe_all) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument(
        "--train-compositions",
        type=int,
        nargs=2,
        default=(3277, 26214),
        metavar=("DEFAULT", "PAPER"),
        help="training compositions (×8 fluxes) assumed per epoch for the projection",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32; batch = the profile's batch size "
        "× its flux points (profiles.SETTINGS)\n"
    )
    rows = []
    for profile, n_train in zip(("default", "paper"), args.train_compositions, strict=True):
        env.seed_everything(0)
        base = models.build("neural_ode", profile, method="dopri5", step_size=None)
        h, err_d, err_r = matched_rk4_step(base)
        print(
            f"{profile}: {models.n_parameters(base):,} parameters; rk4 step {h:g} in τ "
            f"(max error {err_r:.2g} vs dopri5 {err_d:.2g} on the scaled state)"
        )
        variants = {
            "dopri5 direct": {},
            "dopri5 adjoint (seminorm)": {"adjoint": True},
            "dopri5 adjoint (plain norm)": {"adjoint": True, "adjoint_seminorm": False},
            f"rk4 h={h:g} direct": {"method": "rk4", "step_size": h},
            f"rk4 h={h:g} adjoint": {"method": "rk4", "step_size": h, "adjoint": True},
        }
        variants.setdefault("rk4 h=0.1 direct", {"method": "rk4", "step_size": 0.1})
        knobs = profiles.get(profile).settings
        epochs, batch_size, n_flux = (
            knobs.pretraining["epochs"],
            knobs.pretraining["batch_size"],
            knobs.pretraining_fluxes,
        )
        batches = -(-n_train // batch_size)
        for name, changes in variants.items():
            sec, nfe_f, nfe_a = time_variant(_with(base, **changes), args.reps, batch_size, n_flux)
            hours = sec * batches * epochs / 3600
            rows.append((profile, batch_size, n_flux, name, sec, nfe_f, nfe_a, hours, epochs, batches))
            print(
                f"  {name:30s} {sec:7.3f} s/batch  NFE fwd {nfe_f:5.0f} total {nfe_a:5.0f}  "
                f"→ {hours:6.2f} h for {epochs} epochs × {batches} batches",
                flush=True,
            )
    print("\n| profile (batch × fluxes) | variant | s / batch | NFE fwd | NFE total | projected h (epochs × batches) |")
    print("|---|---|---:|---:|---:|---:|")
    for profile, batch_size, n_flux, name, sec, nfe_f, nfe_a, hours, epochs, batches in rows:
        print(
            f"| {profile} ({batch_size} × {n_flux}) | {name} | {sec:.3f} | {nfe_f:.0f} | {nfe_a:.0f} | "
            f"{hours:.2f} ({epochs} × {batches}) |"
        )


if __name__ == "__main__":
    main()
