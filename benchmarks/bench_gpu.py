"""Seconds per paper-size pre-training epoch on a GPU (or the CPU), and the 1000-epoch projection.

Times the training step of ``training.train`` (forward, eq. 4 loss, backward, Adam) of the paper-size neural
ODE (``SETTINGS``: width 584, batch 32 × 16 fluxes, 820 batches per epoch) on ``--batches`` fixed batches after
``--warmup`` untimed ones, with the device synchronised only around the timed block, and projects
seconds per batch × 820 batches × 1000 epochs. Inputs are pinned host tensors copied with non_blocking=True.
``--compile MODE`` wraps the network evaluation (``func.field``) in ``torch.compile``: "reduce-overhead" records
CUDA graphs (one replay per evaluation instead of ~25 kernel launches), "default" fuses without graphs (what a
CPU run can exercise). ``--checkpoint`` times trained weights (their step counts), else an untrained model.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_gpu.py [--device auto] [--compile none|default|reduce-overhead]
        [--solver profile|per_sample|rms|rk4] [--checkpoint CKPT] [--data runs/paper/data/pretraining.npz]

Without ``--data`` the batches are Sobol compositions of the pre-training distribution with random targets (the
cost of a step does not depend on the labels, only, through the step count, on the weights). ``--count-ops``
prints how many torch operators one training step dispatches (each one a kernel launch on a GPU in eager mode).
"""

from __future__ import annotations

import argparse
import time

import torch

from nanoutils import env, models, profiles, sampling, training

SOLVERS = {
    "profile": {},  # the profile's own (SETTINGS)
    "per_sample": {"method": "dopri5", "step_size": None, "error_norm": "per_sample", "rtol": 1e-3, "atol": 1e-4},
    "rms": {"method": "dopri5", "step_size": None, "error_norm": "rms", "rtol": 1e-4, "atol": 1e-6},  # paper, before
    "rk4": {"method": "rk4", "step_size": 0.1, "error_norm": "rms"},
}


def batches(args, species, n: int) -> list[dict[str, torch.Tensor]]:
    """``n`` training batches as pinned host tensors (the layout of ``training._tensors``)."""
    knobs = profiles.get(args.profile).settings
    size, k = knobs.pretraining["batch_size"], knobs.pretraining_fluxes
    if args.data:
        data = training.TransportData.load(args.data)
        t = training._tensors(data, torch.device("cpu"), torch.float32)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
        out = [{key: v[order[i * size : (i + 1) * size]] for key, v in t.items()} for i in range(n)]
    else:
        comp = sampling.sobol_compositions(n * size, seed=0, species=species)
        feed = torch.tensor(comp.concentration, dtype=torch.float32)
        mask = torch.tensor(comp.mask)
        flux = torch.tensor(sampling.flux_grid(k), dtype=torch.float32).expand(n * size, -1).contiguous()
        gen = torch.Generator().manual_seed(0)
        target = feed[:, None, :] * torch.rand(n * size, k, feed.shape[1], generator=gen)
        tmask = mask[:, None, :].expand_as(target).contiguous()
        full = {
            "feed": feed,
            "species_mask": mask,
            "flux": flux,
            "flux_mask": torch.ones_like(flux, dtype=torch.bool),
            "permeate": target,
            "target_mask": tmask,
            "weight": torch.ones(n * size),
            "scale": torch.where(mask, feed, torch.ones_like(feed)),
        }
        out = [{key: v[i * size : (i + 1) * size] for key, v in full.items()} for i in range(n)]
    pin = torch.cuda.is_available()
    return [{key: v.pin_memory() if pin else v for key, v in b.items()} for b in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=env.DEVICES)
    ap.add_argument("--compile", default="none", choices=("none", "default", "reduce-overhead"))
    ap.add_argument("--solver", default="profile", choices=tuple(SOLVERS))
    ap.add_argument("--checkpoint")
    ap.add_argument("--data")
    ap.add_argument("--profile", default="paper", choices=profiles.PROFILES)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--count-ops", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(env.resolve_device(args.device))
    env.seed_everything(0)
    start = (
        training.load_model(args.checkpoint).float() if args.checkpoint else models.build("neural_ode", args.profile)
    )
    model = models.from_spec({"name": "neural_ode", "config": {**models.spec(start)["config"], **SOLVERS[args.solver]}})
    model.load_state_dict(start.state_dict())
    model.to(dev)
    if args.compile != "none":
        model.func.field = torch.compile(model.func.field, mode=args.compile, dynamic=False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    host = batches(args, model.config.species, args.warmup + args.batches)
    knobs = profiles.get(args.profile).settings
    per_epoch = -(-int(0.8 * knobs.pretraining_compositions) // knobs.pretraining["batch_size"])

    def step(b: dict[str, torch.Tensor]) -> None:
        b = {key: v.to(dev, non_blocking=True) for key, v in b.items()}
        loss = training._loss(model, b, b["permeate"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    t_warm = time.perf_counter()
    for b in host[: args.warmup]:
        step(b)
    sync()
    t0 = time.perf_counter()
    for b in host[args.warmup :]:
        step(b)
    sync()
    sec = (time.perf_counter() - t0) / args.batches
    print(
        f"{dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else f'{args.threads} threads'}), "
        f"{models.n_parameters(model):,} parameters, solver {args.solver}, compile {args.compile}: warm-up "
        f"{t0 - t_warm:.1f} s; {sec:.4f} s per batch → {sec * per_epoch:.1f} s per epoch ({per_epoch} batches) → "
        f"{sec * per_epoch * knobs.pretraining['epochs'] / 3600:.2f} h for {knobs.pretraining['epochs']} epochs"
    )
    if args.count_ops:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step(host[0])
        leaves = [
            e
            for e in prof.events()
            if e.name.startswith("aten::") and not any(c.name.startswith("aten::") for c in e.cpu_children)
        ]
        print(f"innermost torch operators of one training step (≈ kernel launches on a GPU, eager): {len(leaves)}")


if __name__ == "__main__":
    main()
