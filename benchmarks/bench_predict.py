"""`predict --model` from a saved bundle: wall and CPU time of 10,000 points, and the coverage of ± k R_std.

    .venv/bin/python benchmarks/bench_predict.py BUNDLE [--coverage]

1. ``load(BUNDLE).predict_frame`` of 1,000 Sobol feeds over the 12-ion table (``sampling.sobol_compositions(1000,
   seed=1)``) × 10 fluxes (5–180 LMH): wall and CPU seconds, with the load average before and after.
2. ``--coverage`` (a bundle calibrated on the VIRTUAL train + validation feeds, ``split_by_feed(virtual, 0.25,
   seed=0)``): the residual scatter of its members on those feeds (:func:`nanoutils.bundle.residual_sd`), and on
   the VIRTUAL test split the fraction of measurements inside prediction ± 1, 2, 3 R_std and R_std_param.
"""

from __future__ import annotations

import argparse
import glob
import time
import warnings

import numpy as np

from nanoutils import bundle, measurements, sampling


def _load() -> list[str]:
    return open("/proc/loadavg").read().split()[:3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle")
    parser.add_argument("--coverage", action="store_true")
    args = parser.parse_args()
    b = bundle.load(args.bundle)
    feeds, fluxes = sampling.sobol_compositions(1000, seed=1).feeds(), np.linspace(5, 180, 10) / 3.6e6
    before = _load()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0, c0 = time.perf_counter(), time.process_time()
        frame = b.predict_frame(feeds, fluxes)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"{len(b.members)} members, {frame.groupby(['feed_id', 'Jv_m_s']).ngroups} points: wall {wall:.1f} s, "
        f"CPU {cpu:.1f} s, load average {before} → {_load()}"
    )
    if args.coverage:
        virtual = measurements.load_measurements(
            sorted(glob.glob(str(measurements.MEASURED_DIR / "virtual_nf270_*.csv")))
        )
        trainval, test = measurements.split_by_feed(virtual, 0.25, seed=0)
        n_params = len(b.info[0].get("parameters", [])) if b.point_estimate else 0
        sd = bundle.residual_sd(bundle.score_points(b.members, trainval, b.point_estimate), n_params)
        s = bundle.score_points(b.members, test, b.point_estimate, sd)
        err = s["R_pred"] - s["R_meas"]
        print(
            f"residual_sd {100 * sd:.2f} pp; VIRTUAL test: {len(s)} points, MAE {100 * err.abs().mean():.2f} pp, "
            f"RMS {100 * np.sqrt((err**2).mean()):.2f} pp"
        )
        for k in (1, 2, 3):
            print(
                f"± {k}: R_std {100 * bundle.coverage(s, k):.1f} %, R_std_param "
                f"{100 * bundle.coverage(s.assign(R_std=s['R_std_param']), k):.1f} %"
            )


if __name__ == "__main__":
    main()
