"""Eq. 11 fit: trust-region Gauss–Newton with implicit-differentiation Jacobians (:func:`fitting.fit_gradient`)
against dual annealing + Nelder–Mead (:func:`fitting.fit`), both from the same random start (seed), in one run.

    .venv/bin/python benchmarks/bench_gradient_fit.py [--anneal 30] [--nm 300] [--seeds 0]

Data: the real FdL 2021 set (75 points) and the VIRTUAL NF270 set (≈ 850 points), all points (no split).
Wall times exclude the standard-error step of :func:`fitting.fit` (``with_uncertainty=False``); the
gradient fit's standard errors come free from its final Jacobian. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from nanoutils import data, fitting, virtual_lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anneal", type=int, default=30, help="dual-annealing iterations")
    parser.add_argument("--nm", type=int, default=300, help="Nelder-Mead iterations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the common random start")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}\n")
    print(
        "| data set | seed | annealing + NM: χ² | evaluations | wall s | gradient: χ² | evaluations | wall s "
        "| χ² ratio | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sets = (("real NF270 (FdL 2021)", data.load_dataset("nf270_fdl2021")), ("VIRTUAL NF270", virtual_lab.load()))
    for label, meas in sets:
        for seed in args.seeds:
            t0 = time.perf_counter()
            ref = fitting.fit(meas, seed=seed, anneal_maxiter=args.anneal, nm_maxiter=args.nm, with_uncertainty=False)
            t_ref = time.perf_counter() - t0
            t0 = time.perf_counter()
            grad = fitting.fit_gradient(meas, seed=seed)
            t_grad = time.perf_counter() - t0
            print(
                f"| {label} | {seed} | {ref.chi2:.6g} | {len(ref.trace)} | {t_ref:.1f} | {grad.chi2:.6g} | "
                f"{len(grad.trace)} | {t_grad:.1f} | {grad.chi2 / ref.chi2:.4f} | {t_ref / t_grad:.1f}× |",
                flush=True,
            )
            print(
                "  params annealing+NM:",
                {k: f"{v:.4g}" for k, v in ref.params.items()},
                " gradient:",
                {k: f"{v:.4g}" for k, v in grad.params.items()},
                flush=True,
            )


if __name__ == "__main__":
    main()
