"""Real-data transfer of the membrane-family neural ODE: code only vs code + weights (leave one feed out).

    PYTHONPATH=$PWD python benchmarks/bench_family_transfer.py [--checkpoint runs/bench_family/ckpt/best.pt]
        [--seeds 0 1 2] [--profile default] [--held-out KEY ...] [--virtual]

``--virtual``: instead, Table 1's VIRTUAL split (``comparison.splits``): each row calibrated on the VIRTUAL training
and validation feeds and scored on the VIRTUAL test feeds, as the DSPM-DE row of Table 1 is.

The pre-trained network is ``benchmarks/bench_family.py``'s (same family set, read from its cache). Every fold
calibrates with :func:`nanoutils.membrane_calibration.calibrate` and the profile's budgets: the start code from the
DSPM-DE fit of the training feeds (Pitzer, computed once per fold and seed and shared by both rows), (a) the code
alone, and for the second row (b) the weights with eq. 5 noise and family feeds mixed in.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from nanoutils import (
    comparison,
    measurements,
    membrane_calibration,
    metrics,
    models,
    pretraining_set,
    training,
    transfer,
)

DATA = Path("runs/bench_family/data/pretraining_family_pitzer.npz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/bench_family/ckpt/best.pt"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--rows", nargs="+", default=["code", "code + weights"], choices=["code", "code + weights"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads while calibrating")
    parser.add_argument("--held-out", nargs="+", default=None, help="feed keys to hold out (default all)")
    parser.add_argument("--virtual", action="store_true", help="Table 1's VIRTUAL split instead of the real folds")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    base = training.load_model(args.checkpoint).cpu()
    simulated = pretraining_set.split(training.TransportData.load(DATA))["train"]
    meas = measurements.load_dataset("nf270_fdl2021")
    starts: dict[tuple[tuple[str, ...], int], object] = {}

    def row(weights: bool):
        def calibrate(train: measurements.Measurements, seed: int):
            key = (tuple(train.feed_keys), seed)
            if key not in starts:
                starts[key] = membrane_calibration.start_code(train, args.profile, seed, "pitzer")
            model, stages = membrane_calibration.calibrate(
                models.clone(base),
                train,
                profile=args.profile,
                seed=seed,
                simulated=simulated,
                weights=weights,
                start=starts[key],
                threads=args.threads,
            )
            summary = [(s.name, round(s.in_sample.value, 2) if s.in_sample else None, s.outside_prior) for s in stages]
            print(key, summary, flush=True)
            return model

        return calibrate

    rows = {f"family neural ODE, {r}": row(r != "code") for r in args.rows}
    if args.virtual:
        split = comparison.splits(args.profile, simulated={})  # the VIRTUAL split only
        for name, calibrate in rows.items():
            for seed in args.seeds:
                frame = transfer.predict_points(split.virtual_test, calibrate(split.virtual_trainval, seed))
                print(f"VIRTUAL test, {name}, seed {seed}: {metrics.rejection_error(frame)} pp", flush=True)
        return
    bench = transfer.benchmark(meas, rows, seeds=args.seeds, in_sample=False, held_out=args.held_out)
    print(bench.folds[["model", "seed", "fold", "ions", "error_pp"]].to_string())
    print(bench.headline().round(2).to_string())


if __name__ == "__main__":
    main()
