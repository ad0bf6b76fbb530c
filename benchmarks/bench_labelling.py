"""Labels per second of the pre-training set with 1 and 2 local dask worker processes (and serially).

    PYTHONPATH=$PWD python benchmarks/bench_labelling.py [--compositions 1024] [--fluxes 10]

A label is one (composition, flux) point solved by DSPM-DE. Each worker is a process with one thread and
one BLAS thread (``pretraining_set.DASK_CONFIG``), so the ratio measures parallel chunks, not BLAS threading.
Prints the machine load (1-min
load average) before and after, since other jobs on the machine lower the speed-up.
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse
import time

import dask
import numpy as np
from distributed import Client, LocalCluster

from nanoutils import pretraining_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compositions", type=int, default=1024)
    parser.add_argument("--fluxes", type=int, default=10)
    args = parser.parse_args()
    spec = pretraining_set.PretrainingSpec(n_compositions=args.compositions, n_flux=args.fluxes)
    n_labels = args.compositions * args.fluxes
    warm_up = pretraining_set.PretrainingSpec(n_compositions=4, n_flux=2)
    pretraining_set.label(warm_up)
    print(
        f"{args.compositions} compositions × {args.fluxes} fluxes = {n_labels} labels, "
        f"{-(-args.compositions // pretraining_set.CHUNK)} chunks; cores: {os.cpu_count()}; "
        f"load before: {os.getloadavg()[0]:.2f}"
    )
    t0 = time.perf_counter()
    reference = pretraining_set.label(spec)
    rates = {"serial": n_labels / (time.perf_counter() - t0)}
    for workers in (1, 2):
        with (
            dask.config.set(pretraining_set.DASK_CONFIG),
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as lc,
            Client(lc) as client,
        ):
            client.run(pretraining_set.label, warm_up)  # imports and first solve on every worker, untimed
            t0 = time.perf_counter()
            labels = pretraining_set.label(spec, client)
            rates[f"{workers} worker(s)"] = n_labels / (time.perf_counter() - t0)
        assert np.array_equal(labels[0], reference[0], equal_nan=True), "dask labels differ from serial ones"
    for name, rate in rates.items():
        print(f"{name:>12}: {rate:8.1f} labels/s")
    print(
        f"2 workers / 1 worker: {rates['2 worker(s)'] / rates['1 worker(s)']:.2f}×; "
        f"load after: {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
