"""Measured seconds per pre-training epoch of a profile's neural ODE, on its own pre-training set.

The profile's model (``models.build("neural_ode", PROFILE)``) and loop (``TrainConfig.for_profile``) train on the train
split of the profile's pre-training set (labelled by DSPM-DE first if absent, cached in ``runs/PROFILE/data``) for
``--epochs`` epochs, validation included, exactly as chapter 04 does but without its evaluation cells. Prints one
line per epoch: wall seconds, losses, and the forward solves' f evaluations, accepted and rejected steps per batch
(the fused dopri5's counts; none for fixed-step solvers).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_epoch.py --profile paper --epochs 1 [--threads 2]
"""

from __future__ import annotations

import argparse
import time

from nanoutils import env, models, pretraining_set, training
from nanoutils.models._dopri5 import SolveStats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    parts = pretraining_set.split(pretraining_set.pretraining_set(profile=args.profile))
    print(f"pre-training set ready in {time.perf_counter() - t0:.0f} s: {len(parts['train'])} train compositions")
    env.seed_everything(args.seed)
    model = models.build("neural_ode", args.profile)
    cfg = training.TrainConfig.for_profile(args.profile, seed=args.seed, epochs=args.epochs, threads=args.threads)
    stats = model.stats = SolveStats()
    batches = -(-len(parts["train"]) // cfg.batch_size)
    print(f"{models.n_parameters(model):,} parameters, {batches} batches of {cfg.batch_size}; {model.config}")

    def report(rec: dict[str, float]) -> None:
        per = {k: getattr(stats, k) / batches for k in ("nfe", "accepted", "rejected")}
        print(
            f"epoch {int(rec['epoch'])}: {rec['seconds']:.1f} s, train loss {rec['train_loss']:.3g}, "
            f"val loss {rec['val_loss']:.3g}; per training batch incl. validation solves: "
            + ", ".join(f"{k} {v:.1f}" for k, v in per.items()),
            flush=True,
        )
        stats.nfe = stats.accepted = stats.rejected = 0

    training.train(model, parts["train"], parts["val"], cfg, device="cpu", progress=False, callback=report)


if __name__ == "__main__":
    main()
