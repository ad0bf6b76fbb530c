"""Throughput of the batched DSPM-DE solver, its speed-up over the paper's reference scheme, and
the cost of each model option (issue 10) next to the ideal baseline.

    .venv/bin/python benchmarks/bench_dspmde.py [--ref-cases 5] [--options-only] [--option-feeds 1000]

Random electroneutral mixtures (log-uniform 0.1–1000 mol/m³, seeded) of 2, 4 and 6 ions on
NF270 (Table 2), fluxes 1–30 µm/s, no film. Batch sizes count composition × flux cases.
Prints markdown tables for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

from nanoutils import ions
from nanoutils.dspmde import ChargeIsotherm, Membrane, solve, solve_reference

MIXTURES = {2: ["Na+", "Cl-"], 4: ["Na+", "Mg2+", "Cl-", "SO4-2"], 6: ["Na+", "K+", "Mg2+", "Ca2+", "Cl-", "SO4-2"]}
BATCHES = {1: (1, 1), 100: (10, 10), 10_000: (1000, 10)}  # cases: (compositions, fluxes)
OPTIONS = {  # label → keyword arguments of solve (issue 10); each timed on the same cases as "ideal"
    "ideal (baseline)": {},
    "activity = davies": {"activity": "davies"},
    "activity = pitzer": {"activity": "pitzer"},
    "isotherm = freundlich(0.3)": {"isotherm": ChargeIsotherm.freundlich(0.3)},
    "isotherm = langmuir (Mg²⁺ binding)": {"isotherm": ChargeIsotherm.langmuir(60.0, {"Mg2+": 0.03})},
    "image_forces (ε_m = 4.5)": {"image_forces": True},
    "temperature_model = stokes_einstein, 20 °C": {"temperature_model": "stokes_einstein", "temperature": 293.15},
    "pore = single_element": {"pore": "single_element"},
    "all of pitzer + langmuir + image + 20 °C": {
        "activity": "pitzer",
        "image_forces": True,
        "isotherm": ChargeIsotherm.langmuir(60.0, {"Mg2+": 0.03}),
        "temperature_model": "stokes_einstein",
        "temperature": 293.15,
    },
}


def mixtures(names: list[str], n: int, rng: np.random.Generator) -> np.ndarray:
    """n feeds with every ion present, log-uniform, balanced with the first cation or anion."""
    z = ions.charges(names)
    c = np.exp(rng.uniform(np.log(0.1), np.log(1000.0), (n, len(names))))
    net = c @ z
    cat, an = int(np.flatnonzero(z > 0)[0]), int(np.flatnonzero(z < 0)[0])
    c[:, an] += np.maximum(net, 0) / -z[an]
    c[:, cat] += np.maximum(-net, 0) / z[cat]
    return c


def best_time(fn, min_seconds: float = 1.0) -> float:
    """Best wall time of repeated calls (at least one, until min_seconds have passed)."""
    best, spent = np.inf, 0.0
    while spent < min_seconds or best == np.inf:
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best, spent = min(best, dt), spent + dt
    return best


def options_table(n_feeds: int, rng: np.random.Generator) -> None:
    """Solves/s of 4-ion mixtures (n_feeds × 10 fluxes) with each option of :data:`OPTIONS`."""
    names, membrane = MIXTURES[4], Membrane.nf270()
    feeds, fluxes = mixtures(names, n_feeds, rng), np.linspace(1e-6, 3e-5, 10)
    print(f"\n4-ion mixtures, {n_feeds:,} × 10 = {10 * n_feeds:,} cases per call\n")
    print("| option | solves/s | cost / ideal | median Newton its | failed |")
    print("|---|---:|---:|---:|---:|")
    base = None
    for label, options in OPTIONS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = solve(feeds, fluxes, species=names, membrane=membrane, **options)
            seconds = best_time(
                lambda options=options: solve(feeds, fluxes, species=names, membrane=membrane, **options), 2.0
            )
        base = seconds if base is None else base
        print(
            f"| {label} | {result.converged.size / seconds:,.0f} | {seconds / base:.2f}× | "
            f"{np.median(result.info['iterations']):.0f} | {result.n_failed} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref-cases", type=int, default=5, help="reference-scheme cases per mixture size")
    parser.add_argument("--options-only", action="store_true", help="only the table of model options")
    parser.add_argument("--option-feeds", type=int, default=1000, help="compositions per option call (× 10 fluxes)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    membrane = Membrane.nf270()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}\n")
    if args.options_only:
        options_table(args.option_feeds, rng)
        return
    print("| ions | batch (cases) | main: solves/s | main: ms/case | reference: ms/case | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for d, names in MIXTURES.items():
        ref_feeds = mixtures(names, args.ref_cases, rng)
        ref_fluxes = rng.uniform(1e-6, 3e-5, args.ref_cases)
        t0 = time.perf_counter()
        for c, jv in zip(ref_feeds, ref_fluxes, strict=True):
            assert solve_reference(c, jv, species=names, membrane=membrane).converged.all()
        ref_ms = (time.perf_counter() - t0) / args.ref_cases * 1e3
        for batch, (n_feeds, n_fluxes) in BATCHES.items():
            feeds = mixtures(names, n_feeds, rng)
            fluxes = np.linspace(1e-6, 3e-5, n_fluxes)
            result = solve(feeds, fluxes, species=names, membrane=membrane)
            assert result.converged.all(), f"{result.n_failed} cases failed"
            seconds = best_time(
                lambda feeds=feeds, fluxes=fluxes, names=names: solve(feeds, fluxes, species=names, membrane=membrane)
            )
            ms = seconds / batch * 1e3
            print(f"| {d} | {batch:,} | {batch / seconds:,.0f} | {ms:.3f} | {ref_ms:.1f} | {ref_ms / ms:,.0f}× |")
    options_table(args.option_feeds, rng)


if __name__ == "__main__":
    main()
