"""The hybrid model (network closure + DSPM-DE) on the real-data transfer benchmark and on the VIRTUAL split.

    .venv/bin/python benchmarks/bench_hybrid.py [--seeds 0 1 2] [--rows hybrid_dspmde dspmde_plus dspmde]
    .venv/bin/python benchmarks/bench_hybrid.py --virtual --rows   # the VIRTUAL split only

Real: the FdL 2021 NF270 set (75 points, 3 feeds), leave one feed out and in-sample, every row calibrated exactly
as ``nanoutils calibrate NAME --profile PROFILE`` (:func:`nanoutils.transfer.registry_rows`), wall time of every
calibration recorded (upper bounds on a shared machine). Writes the folds and headline, and the learned closure
figure (in-sample and NaCl-fold models of the first seed) to the profile's figures directory.
VIRTUAL: :func:`nanoutils.comparison.splits` (test = 25 % of the virtual feeds, validation = 20 % of the rest);
the hybrid trained on the training feeds with early stopping on the validation feeds, scored on the test feeds
(:func:`nanoutils.finetuning.score`), next to its base fit (dspmde_plus, with the film for observed rejections) and
the hybrid with zero corrections (the base fit without the film: the hybrid, like every learned model, sees the bulk
feed of an observed rejection).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

from nanoutils import (
    comparison,
    dspmde,
    finetuning,
    fitting,
    hybrid,
    measurements,
    metrics,
    models,
    plotting,
    report,
    transfer,
)
from nanoutils.profiles import get

PATH = ("MgCl2-10mM", "NaCl-10mM", "Na2SO4-10mM")  # the held-out NaCl feed between the two others


def real(args, P) -> None:
    meas = measurements.load_dataset("nf270_fdl2021")
    times: list[float] = []

    def timed(calibrate):
        def run(train, seed):
            t0 = time.perf_counter()
            model = calibrate(train, seed)
            times.append(time.perf_counter() - t0)
            return model

        return run

    rows = {name: timed(f) for name, f in transfer.registry_rows(args.rows, profile=P.name).items()}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dspmde.ConvergenceWarning)
        bench = transfer.benchmark(meas, rows, seeds=args.seeds)
    bench.folds["calibrate_s"] = times  # one calibration per fold row, in the benchmark's order
    bench.folds.to_csv(args.out / "folds.csv", index=False)
    bench.points.to_csv(args.out / "points.csv", index=False)
    head = bench.headline()
    head.to_csv(args.out / "headline.csv")
    print(
        f"real NF270 (FdL 2021), leave one feed out + in-sample, seeds {args.seeds}, {time.perf_counter() - t0:.0f} s"
    )
    print(report.markdown(head), "\n")
    cols = ["model", "seed", "fold", "ions", "error_pp", "n_points", "n_nan", "calibrate_s"]
    print(report.markdown(bench.folds[cols]), "\n")
    per_fold = bench.folds.pivot_table(index="model", columns="fold", values="error_pp", aggfunc=["mean", "std"])
    print(report.markdown(per_fold.round(2)), "\n")
    if "hybrid_dspmde" in args.rows:
        fig = hybrid.transfer_closure(bench, meas, PATH, "NaCl-10mM", seed=args.seeds[0])
        print("figure:", plotting.save(fig, P.figures_dir, "06_hybrid_closure"))


def virtual(args, P) -> None:
    split = comparison.splits(P, simulated={})
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dspmde.ConvergenceWarning)
            res, base = hybrid.fit(split.virtual_train, val_meas=split.virtual_val, profile=P, seed=seed)
        seconds = time.perf_counter() - t0
        score, frame = finetuning.score(res.model, split.virtual_test)
        base_score = metrics.rejection_error(fitting.predictions(split.virtual_test, base.model))
        zero = models.HybridDSPMDE(res.model.config).double()  # zero corrections: the base fit without its film
        rows.append(
            {
                "seed": seed,
                "hybrid test (pp)": str(score),
                "NaN points": int(frame["R_pred"].isna().sum()),
                "base dspmde_plus test (pp)": str(base_score),
                "base without film = zero correction (pp)": str(finetuning.score(zero, split.virtual_test)[0]),
                "best epoch": res.best_epoch,
                "epochs run": len(res.history),
                "seconds (base fit + training)": round(seconds),
            }
        )
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "virtual.csv", index=False)
    print(f"VIRTUAL split: {len(split.virtual_train.feed_keys)} train, {len(split.virtual_val.feed_keys)} val, ")
    print(f"{len(split.virtual_test.feed_keys)} test feeds\n", report.markdown(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="*", default=["hybrid_dspmde", "dspmde_plus", "dspmde"])
    parser.add_argument("--virtual", action="store_true", help="also the VIRTUAL split")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--out", type=Path, default=Path("runs/hybrid"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    P = get(args.profile)
    if args.rows:
        real(args, P)
    if args.virtual:
        virtual(args, P)


if __name__ == "__main__":
    main()
