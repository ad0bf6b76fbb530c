"""Cost of the eq. 11 fit: objective evaluations per second and the wall time of a full fit.

    .venv/bin/python benchmarks/bench_fitting.py [--anneal 30] [--nm 300]

Data: the VIRTUAL NF270 set (data/measured/virtual_nf270_*.csv, ≈ 850 points, 41 feeds, 4 solve
groups, film on three of them) and the real FdL 2021 set (75 points, 3 feeds). Each objective
evaluation solves every feed with the batched DSPM-DE (ideal activities, 20 pore cells). The full
fit is dual annealing (``--anneal`` iterations, 8 evaluations each) + Nelder–Mead (``--nm``
iterations) + the Gauss–Newton uncertainty (9 evaluations), seed 0, from a random start —
the notebook's default profile. Prints a markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from nanoutils import dspmde, fitting, measurements, virtual_lab


def evaluations_per_second(obj: fitting.Objective, min_seconds: float = 3.0) -> float:
    """Objective evaluations per second at the paper's Table 2 membrane (repeated ≥ min_seconds)."""
    mem = dspmde.Membrane.nf270()
    obj.chi2(mem)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        obj.chi2(mem)
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anneal", type=int, default=30, help="dual-annealing iterations")
    parser.add_argument("--nm", type=int, default=300, help="Nelder-Mead iterations")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}\n")
    print(
        "| data set | points | feeds | solve calls / evaluation | evaluations/s | full fit: evaluations | "
        "full fit: wall s | χ² | unconverged at optimum |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, meas in (
        ("VIRTUAL NF270", virtual_lab.load()),
        ("real NF270 (FdL 2021)", measurements.load_dataset("nf270_fdl2021")),
    ):
        obj = fitting.Objective(meas)
        rate = evaluations_per_second(obj)
        res = fitting.fit(meas, seed=0, anneal_maxiter=args.anneal, nm_maxiter=args.nm)
        print(
            f"| {label} | {obj.n_points} | {len(obj.arrays.feed_keys)} | {len(obj.groups)} | {rate:.1f} | "
            f"{len(res.trace) + 9} | {res.wall_s:.1f} | {res.chi2:.4g} | {res.n_unconverged} |"
        )


if __name__ == "__main__":
    main()
