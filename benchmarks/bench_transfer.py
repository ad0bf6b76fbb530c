"""The real-data transfer benchmark of the mechanistic models, and the fit report of dspmde_plus.

    .venv/bin/python benchmarks/bench_transfer.py [--seeds 0] [--laplace 16] [--out runs/transfer]
    .venv/bin/python benchmarks/bench_transfer.py --models --laplace 0 --registry dspmde dspmde_plus sdem

Data: the real FdL 2021 NF270 set (75 points, 3 feeds, one per dominant salt). Rows: DSPM-DE with
fitted Z, + Langmuir binding of the divalent cations, dspmde_plus (+ per-ion ΔW, prior N(0, 1 kT²)),
and with ``--laplace N`` the same three as Laplace posterior-predictive ensembles of N draws.
Leave one feed out (folds labelled "ions seen" / "ion X unseen") and in-sample, fit budget
:func:`nanoutils.dspmde_plus.fit_budget` (default profile). Prints markdown tables; writes the folds, points,
per-quantity frames, the fit table and correlation matrix of the in-sample dspmde_plus fit, and the fold figure.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from nanoutils import dspmde_plus, measurements, report, transfer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--laplace", type=int, default=8, help="ensemble draws (0: no ensemble rows)")
    parser.add_argument("--multistart", type=int, default=0, help="random starts per multi-start ensemble (0: none)")
    parser.add_argument("--held-out", nargs="+", default=None, help="feed keys to hold out (default all)")
    parser.add_argument(
        "--models", nargs="*", default=None, help="dspmde_plus rows to run (default all; none: only --registry rows)"
    )
    parser.add_argument(
        "--registry",
        nargs="+",
        default=[],
        metavar="NAME",
        help="also rows calibrated exactly as `nanoutils calibrate NAME` (e.g. dspmde dspmde_plus sdem)",
    )
    parser.add_argument("--profile", default="default", help="profile of the --registry rows (default: default)")
    parser.add_argument("--no-in-sample", action="store_true", help="transfer folds only")
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    meas = measurements.load_dataset("nf270_fdl2021")
    models = dict(dspmde_plus.CALIBRATIONS)
    if args.laplace:
        models |= {k: partial(f, n_draws=args.laplace) for k, f in dspmde_plus.ENSEMBLES.items()}
    if args.multistart:
        models |= {k: partial(f, n_starts=args.multistart) for k, f in dspmde_plus.MULTISTARTS.items()}
    if args.models is not None:
        models = {k: f for k, f in models.items() if k in args.models}
    models |= transfer.registry_rows(args.registry, profile=args.profile)
    t0 = time.perf_counter()
    bench = transfer.benchmark(meas, models, seeds=args.seeds, held_out=args.held_out, in_sample=not args.no_in_sample)
    wall = time.perf_counter() - t0
    bench.folds.to_csv(args.out / "folds.csv", index=False)
    bench.points.to_csv(args.out / "points.csv", index=False)
    bench.per_quantity().to_csv(args.out / "per_quantity.csv")
    head = bench.headline()
    head.to_csv(args.out / "headline.csv")
    pd.set_option("display.width", 200)
    print(f"real NF270 (FdL 2021), leave one feed out + in-sample, seeds {args.seeds}, {wall:.0f} s\n")
    print(report.markdown(head), "\n")
    cols = ["model", "seed", "fold", "ions", "error_pp", "n_points", "n_nan"] + [
        c for c in ("interval_coverage", "mean_R_std_pp") if c in bench.folds
    ]
    print(report.markdown(bench.folds[cols]), "\n")
    print(report.markdown(bench.per_quantity().reset_index()), "\n")
    names = [n for n in ("DSPM-DE (fitted Z)", "dspmde_plus", "dspmde_plus (Laplace)") if n in models] or list(models)
    fig = transfer.plot(bench, meas, names, seed=args.seeds[0])
    fig.savefig(args.out / "transfer_folds.png", dpi=150, bbox_inches="tight")
    if args.no_in_sample:
        return
    result = dspmde_plus.fitted(meas, "dspmde_plus", args.seeds[0], with_uncertainty=True)
    table = result.table()
    table.to_csv(args.out / "dspmde_plus_table.csv")
    corr = pd.DataFrame(result.correlation, index=result.names, columns=result.names)
    corr.to_csv(args.out / "dspmde_plus_correlation.csv")
    print(
        f"dspmde_plus on all real feeds: χ² = {result.chi2:.1f} ({result.n_points} points), fit {result.wall_s:.0f} s\n"
    )
    print(report.markdown(table), "\n")
    print(report.markdown(corr.rename_axis("parameter"), digits=2), "\n")
    print(f"wrote {args.out}/", np.round(wall, 1))


if __name__ == "__main__":
    main()
