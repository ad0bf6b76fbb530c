"""The membrane-family pre-training at a scale a shared 2-core machine affords, measured in one run.

    PYTHONPATH=$PWD python benchmarks/bench_family.py [--compositions 512] [--block 16] [--fluxes 6]
        [--width 64] [--epochs 60] [--batch 10000] [--single runs/default/checkpoints/neural_ode/best.pt]

1. Labelling cost, Pitzer–Kim vs ideal activities: the same family compositions labelled both ways in this run
   (first 128 compositions), and how far the two labels are apart (pp of rejection).
2. A neural ODE with the membrane code as input, pre-trained on the family set (Pitzer labels, split by whole
   membrane); its mean absolute rejection error on the held-out **test membranes** (simulated, unseen membranes
   and compositions). With ``--single``: the single-membrane (Table 2 Z, ideal labels) checkpoint on the same test
   set, the ablation "single membrane vs family".
3. The network as a DSPM-DE surrogate: feed × flux points per second of the network and of ``dspmde.solve``
   (Pitzer, one call per membrane block) on the test set, tiled to ``--batch`` points for the network, torch on
   2 threads; the ratio is measured in this run.
4. Code inference (stage (a) of :mod:`nanoutils.membrane_calibration`) on each test membrane's DSPM-DE labels,
   started from the reference (Table 2) code: the code error on the identifiable entries and the rejection error
   before and after.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from nanoutils import env, membrane_calibration, membrane_family, metrics, models, pretraining_set, training

OUT = Path("runs/bench_family")


def error_pp(model, data) -> float:
    """Mean absolute rejection error (pp) of ``model`` on ``data`` (simulated: every present ion, every flux)."""
    pred = training.predict_dataset(model, data).double().numpy()
    return float(metrics.rejection_error(data.to_frame(pred), n_boot=50).value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compositions", type=int, default=512)
    parser.add_argument("--block", type=int, default=16)
    parser.add_argument("--fluxes", type=int, default=6)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--single", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads while training (1 on a loaded machine)")
    parser.add_argument("--pretrain-only", action="store_true", help="stop after step 2 (the checkpoint is kept)")
    parser.add_argument(
        "--ideal-ablation",
        action="store_true",
        help="instead of steps 3-4: the same network trained on ideal labels, scored on the Pitzer test membranes",
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    spec = pretraining_set.PretrainingSpec(
        n_compositions=args.compositions,
        n_flux=args.fluxes,
        family=True,
        activity="pitzer",
        membrane_block=args.block,
    )

    # 1. labelling cost, ideal vs Pitzer, same compositions and membranes
    probe = replace(spec, n_compositions=min(128, args.compositions))
    seconds, labels = {}, {}
    for activity in ("ideal", "pitzer"):
        t0 = time.perf_counter()
        labels[activity] = pretraining_set.label(replace(probe, activity=activity))
        seconds[activity] = time.perf_counter() - t0
    feed = probe.compositions().concentration[:, None, :]
    both = labels["ideal"][1] & labels["pitzer"][1]
    dr = np.abs(labels["pitzer"][0] - labels["ideal"][0]) / np.where(feed > 0, feed, np.inf)
    dr = dr[both][(feed > 0).repeat(both.shape[1], 1)[both]]
    print(
        f"labelling {probe.n_compositions} compositions × {probe.n_flux} fluxes "
        f"({-(-probe.n_compositions // probe.membrane_block)} membranes): ideal {seconds['ideal']:.1f} s, "
        f"Pitzer {seconds['pitzer']:.1f} s, ratio {seconds['pitzer'] / seconds['ideal']:.2f}×; "
        f"|R_pitzer − R_ideal| mean {100 * dr.mean():.2f} pp, max {100 * dr.max():.1f} pp"
    )

    # 2. pre-training on the family set, held-out membranes
    data = pretraining_set.pretraining_set(spec, OUT / "data")
    print(f"family set labelling: {data.metadata['labelling_seconds']} s (cached after the first run)")
    parts = pretraining_set.split(data, spec)
    n_membranes = {k: len(np.unique(v.code, axis=0)) for k, v in parts.items()}
    print(f"split by membrane: {n_membranes} membranes, { {k: len(v) for k, v in parts.items()} } compositions")
    env.seed_everything(0)
    model = models.build("neural_ode", "default", width=args.width, membrane_code=membrane_family.N_CODE)
    cfg = training.TrainConfig.for_profile("default", epochs=args.epochs, threads=args.threads)
    t0 = time.perf_counter()
    res = training.train(
        model, parts["train"], parts["val"], cfg, run_dir=OUT / "ckpt", resume="if_compatible", progress=False
    )
    train_s = sum(h["seconds"] for h in res.history)
    model = res.model.cpu()
    print(
        f"pre-training: {models.n_parameters(model)} parameters, {len(res.history)} epochs, {train_s:.0f} s "
        f"(this call {time.perf_counter() - t0:.0f} s), best epoch {res.best_epoch}"
    )
    test_set = parts["test"]
    test_err = error_pp(model, test_set)
    print(
        f"held-out test membranes (simulated, Pitzer labels): {test_err:.2f} pp; "
        f"validation {error_pp(model, parts['val']):.2f} pp"
    )
    if args.single is not None:
        single = training.load_model(args.single).cpu()
        plain = replace(parts["test"], code=None)
        print(f"single-membrane checkpoint {args.single} on the same test membranes: {error_pp(single, plain):.2f} pp")
    if args.pretrain_only:
        return

    if args.ideal_ablation:
        ideal_spec = replace(spec, activity="ideal")
        ideal = pretraining_set.split(pretraining_set.pretraining_set(ideal_spec, OUT / "data"), ideal_spec)
        env.seed_everything(0)
        model_i = models.build("neural_ode", "default", width=args.width, membrane_code=membrane_family.N_CODE)
        res_i = training.train(
            model_i,
            ideal["train"],
            ideal["val"],
            cfg,
            run_dir=OUT / "ckpt_ideal",
            resume="if_compatible",
            progress=False,
        )
        vs_pitzer, vs_ideal = error_pp(res_i.model.cpu(), test_set), error_pp(res_i.model.cpu(), ideal["test"])
        print(
            f"ablation, ideal labels: test membranes scored against Pitzer labels {vs_pitzer:.2f} pp, against "
            f"ideal labels {vs_ideal:.2f} pp (Pitzer-trained: {test_err:.2f} pp)"
        )
        return

    # 3. surrogate throughput and accuracy vs dspmde.solve
    test = parts["test"]
    points = int(test.flux_mask.sum())
    t0 = time.perf_counter()
    pretraining_set.label(replace(spec, n_compositions=len(test)))  # same sizes and blocks as the test set
    solve_s = time.perf_counter() - t0
    reps = max(1, -(-args.batch // points))
    tiled = training.TransportData.concat([test] * reps)
    with env.torch_threads(2):
        training.predict_dataset(model, test)  # warm-up
        t0 = time.perf_counter()
        training.predict_dataset(model, tiled, batch_size=4096)
        net_s = time.perf_counter() - t0
    rate_net, rate_solve = reps * points / net_s, points / solve_s
    print(
        f"surrogate: network {reps * points} points in {net_s:.2f} s ({rate_net:.0f}/s, 2 threads); dspmde.solve "
        f"(Pitzer) {points} points in {solve_s:.1f} s ({rate_solve:.0f}/s); ratio {rate_net / rate_solve:.0f}×; "
        f"error vs DSPM-DE {test_err:.2f} pp"
    )

    # 4. code inference on each test membrane's DSPM-DE labels, from the reference code
    ref = membrane_family.REFERENCE.code()
    code_cfg = membrane_calibration.code_config("default", threads=args.threads)
    for code in np.unique(test.code, axis=0):
        rows = np.flatnonzero((test.code == code).all(1))
        one = replace(test.subset(rows), code=None)
        probe_model = models.clone(model)
        with torch.no_grad():
            probe_model.code.own.copy_(torch.as_tensor(ref, dtype=probe_model.code.own.dtype))
        before = error_pp(probe_model, one)
        present = tuple(s for i, s in enumerate(one.species) if one.species_mask[:, i].any())
        free = membrane_calibration.identifiable(present)
        membrane_calibration.infer_code(probe_model, one, ref, code_cfg, free=free)
        found = probe_model.code.own.detach().double().numpy()
        z = slice(0, 4)
        print(
            f"membrane {np.round(code[:4], 2)}: rejection error {before:.1f} → {error_pp(probe_model, one):.2f} pp "
            f"(true code: {error_pp(model, replace(one, code=np.tile(code, (len(one), 1)))):.2f} pp); "
            f"|Δcode| Z {np.abs(found[z] - code[z]).mean():.2f} (start {np.abs(ref[z] - code[z]).mean():.2f}), "
            f"all identifiable {np.abs(found - code)[free].mean():.2f} (start {np.abs(ref - code)[free].mean():.2f})"
        )


if __name__ == "__main__":
    main()
