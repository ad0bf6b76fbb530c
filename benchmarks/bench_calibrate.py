"""`nanoutils calibrate` and `predict --model`: wall times, and the coverage of mean ± 2 std on held-out data.

    .venv/bin/python benchmarks/bench_calibrate.py [--profile default] [--models dspmde sf] [--skip-cli]

1. ``python -m nanoutils calibrate data/measured/nf270_fdl2021.csv --model dspmde`` (the real set), wall time
   of the command (a fresh process: imports included).
2. ``predict`` of 10,000 feed × flux points (1,000 Sobol feeds of the pre-training ion table × 10 fluxes,
   5–180 LMH) from a bundle of each model in ``--models`` calibrated on the VIRTUAL train + validation feeds,
   in-process wall time of :func:`nanoutils.predict` on the loaded bundle; and (``--ode-profile``) from a
   3-member neural ODE bundle of that profile's size with untrained weights — its fixed-step RK4 costs the
   same whatever the weights, so this times a calibrated bundle without pre-training one.
3. Coverage on the VIRTUAL test split (``comparison.splits``: 25 % of the virtual feeds): the fraction of test
   measurements inside the bundle's prediction ± 2 R_std (``bundle.coverage``; R_std = members' spread and the
   calibration residual scatter in quadrature) and ± 2 R_std_param (members' spread alone), and the test
   error (pp).
Prints markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from nanoutils import bundle, calibration, measurements, sampling

ROOT = Path(__file__).resolve().parents[1]


def cli_calibrate_seconds(out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nanoutils",
            "calibrate",
            str(measurements.MEASURED_DIR / "nf270_fdl2021.csv"),
            "--model",
            "dspmde",
            "--out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - t0


def ode_predict_seconds(profile: str, meas: measurements.Measurements, tmp: Path, feeds, fluxes) -> float:
    from nanoutils import env, models

    members = []
    for seed in range(3):
        env.seed_everything(seed)
        members.append(models.build("neural_ode", profile))
    b = bundle.Bundle(
        "neural_ode",
        "learned",
        members,
        bundle.domain_of(
            meas,
            {"ions": list(members[0].config.species), "c_mM": [0.1, 1000.0], "flux_LMH": [0.0, 216.0], "T_C": [25, 25]},
        ),
        bundle.provenance([], profile, "bench", [0, 1, 2]),
        [],
    )
    loaded = bundle.load(b.save(tmp / "ode"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        frame = loaded.predict_frame(feeds, fluxes)
        seconds = time.perf_counter() - t0
    assert frame.groupby(["feed_id", "Jv_m_s"]).ngroups == 10_000 and (frame["R_std"] >= 0).all()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--models", nargs="+", default=["dspmde"])
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--ode-profile", help="also time predict from a 3-member neural ODE bundle of this profile")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}\n")
    tmp = Path(tempfile.mkdtemp())
    if not args.skip_cli:
        print(
            f"calibrate --model dspmde on nf270_fdl2021.csv (CLI, default profile): "
            f"{cli_calibrate_seconds(tmp / 'real'):.1f} s wall\n"
        )
    virtual = measurements.load_measurements(sorted(glob.glob(str(measurements.MEASURED_DIR / "virtual_nf270_*.csv"))))
    trainval, test = measurements.split_by_feed(virtual, 0.25, seed=0)  # comparison.splits' test split
    comp = sampling.sobol_compositions(1000, seed=1)
    feeds, fluxes = comp.feeds(), np.linspace(5, 180, 10) / 3.6e6
    print(
        "| model | members | calibrate s (VIRTUAL train+val) | predict 10,000 points s | VIRTUAL test error (pp) "
        "| residual_sd (pp) | coverage ± 2 R_std (VIRTUAL test) | coverage ± 2 R_std_param | test points |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    if args.ode_profile:
        print(
            f"predict 10,000 points, 3-member neural ODE bundle ({args.ode_profile} size): "
            f"{ode_predict_seconds(args.ode_profile, virtual, tmp, feeds, fluxes):.2f} s\n"
        )
    for name in args.models:
        t0 = time.perf_counter()
        b = calibration.calibrate(name, trainval, profile=args.profile)
        fit_s = time.perf_counter() - t0
        loaded = bundle.load(b.save(tmp / name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            frame = loaded.predict_frame(feeds, fluxes)
            predict_s = time.perf_counter() - t0
        assert frame.groupby(["feed_id", "Jv_m_s"]).ngroups == 10_000
        scored = loaded.score(test)
        err = 100 * (scored["R_pred"] - scored["R_meas"]).abs().mean()
        param_only = bundle.coverage(scored.assign(R_std=scored["R_std_param"]))
        print(
            f"| {name} | {len(b.members)} | {fit_s:.0f} | {predict_s:.1f} | {err:.1f} | {100 * b.residual_sd:.1f} | "
            f"{100 * bundle.coverage(scored):.0f} % | {100 * param_only:.0f} % | {len(scored)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
