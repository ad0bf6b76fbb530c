"""Command line: ``python -m nanoutils run | predict | calibrate | tune …`` (see ``--help``)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from . import ions
from ._files import atomic_path
from .env import DEVICES
from .profiles import PROFILES, get, table


def _run(args: argparse.Namespace) -> int:
    from .runner import SeriesError, run_series, summary_table

    try:
        runs = run_series(
            args.profile,
            only=args.only,
            device=args.device,
            progress_bar=not args.no_progress,
            max_epochs=args.max_epochs,
        )
    except SeriesError as err:
        print(summary_table(err.runs), file=sys.stderr)
        print(f"\nERROR: {err}", file=sys.stderr)
        return 1
    print(summary_table(runs))
    out = runs[0].output.parent if runs and runs[0].output else None
    print(f"\nexecuted notebooks: {out}")
    print(f"figures and tables: {get(args.profile).figures_dir}/")
    return 0


def _input_file(path: str) -> Path:
    """``path`` as a readable file, or a ValueError saying what it is instead."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file")
    if p.is_dir():
        raise ValueError(f"{p}: is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{p}: not readable (permission denied)")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: empty file")
    return p


def _output_path(path: str) -> Path:
    """``path`` for an output, or a ValueError when its directory does not exist."""
    p = Path(path)
    if not p.parent.resolve().is_dir():
        raise ValueError(f"{p}: cannot write there, directory {p.parent} does not exist")
    return p


def _predict(args: argparse.Namespace) -> int:
    from . import dspmde, units
    from .prediction import predict, read_feeds_csv, to_csv_frame

    out = _output_path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise ValueError(f"{out}: is a directory; --out takes a CSV file name")
    if args.feeds_csv:
        ids, feeds = read_feeds_csv(_input_file(args.feeds_csv))
    else:
        feeds = [ions.Feed.from_salts(text) for text in args.feed]
        ids = [str(i) for i in range(len(feeds))]
    given = args.flux_lmh if args.flux_lmh else args.flux_m_s
    bad = [j for j in given if not j >= 0]
    if bad:
        raise ValueError(f"--flux-{'lmh' if args.flux_lmh else 'm-s'} {bad[0]:g}: fluxes must be ≥ 0")
    fluxes = units.lmh_to_m_s(given) if args.flux_lmh else given
    temperature = None if args.temperature_C is None else args.temperature_C + 273.15
    model: object  # a bundle, a list of trained models or a membrane: predict() takes each
    if args.model:
        from .bundle import ExtrapolationWarning, load

        model = load(args.model)
    elif args.checkpoint:
        from .training import load_model

        model = [load_model(path) for path in args.checkpoint]
    else:
        model = dspmde.Membrane.nf270()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        frame = to_csv_frame(predict(feeds, fluxes, model, temperature=temperature), ids)
    for w in caught:
        if args.model and issubclass(w.category, ExtrapolationWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if out is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from .calibration import calibrate, calibrator
    from .measurements import load_measurements

    calibrator(args.model)  # an unknown name fails before any work
    out = _output_path(args.out)
    paths = [_input_file(p) for p in args.data]
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds {args.seeds}: need at least 1")
    meas = load_measurements(paths)
    bundle = calibrate(
        args.model,
        meas,
        profile=args.profile,
        seeds=args.seeds,
        sources=paths,
        command=" ".join(["nanoutils", *args.argv]),
    )
    bundle.save(out)
    s = bundle.scored
    print(
        f"calibrated {args.model} on {len(s)} points of {len(meas.feeds)} feeds: in-sample error "
        f"{100 * (s['R_pred'] - s['R_meas']).abs().mean():.2f} pp; bundle: {out}/ (report: {out}/report/summary.md)"
    )
    return 0


def _calibrate_epilog() -> str:
    from .calibration import CALIBRATORS, DEFAULT_MODEL

    width = max(map(len, CALIBRATORS))
    lines = [f"  {c.name:<{width}}  [{c.kind}] {c.description}" for c in CALIBRATORS.values()]
    return f"models (--model, default {DEFAULT_MODEL}):\n" + "\n".join(lines)


def _add_calibrate(sub) -> None:
    from .calibration import DEFAULT_MODEL

    cal = sub.add_parser(
        "calibrate",
        help="fit a model to measurements (CSV) and write a model bundle",
        description="Fit a model to measured rejections (the CSV schema of data/measured/README.md) "
        "and write a model bundle DIR for `predict --model DIR` and nanoutils.load(DIR).",
        epilog=_calibrate_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cal.add_argument("data", nargs="+", metavar="DATA.csv", help="measurement CSV file(s)")
    cal.add_argument(
        "--model", default=DEFAULT_MODEL, metavar="NAME", help=f"model to fit (default {DEFAULT_MODEL}; list below)"
    )
    cal.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write (replaced if a bundle)")
    cal.add_argument(
        "--profile",
        choices=PROFILES,
        default="default",
        help="run profile: fit budgets, network sizes and pre-trained weights (default: default)",
    )
    cal.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="fits with seeds 0…N−1, members pooled (default: 1 for mechanistic models, 3 for learned ones)",
    )
    cal.set_defaults(func=_calibrate)


def _add_tune(sub) -> None:
    from .tuning import DEPTH

    def tune(args: argparse.Namespace) -> int:
        from .tuning import best_settings, tune

        study = tune(
            args.model, args.trials, args.profile, url=args.storage, name=args.study, seed=args.seed, device=args.device
        )
        s = best_settings(study)
        print(
            f"study {study.study_name}: {len(study.trials)} trials; best validation loss (VIRTUAL validation feeds) "
            f"{s.value:.4g} with lr {s.lr:.3g}, {s.config}, {s.n_parameters:,} parameters, noise {s.noise}"
        )
        return 0

    p = sub.add_parser(
        "tune",
        help="hyper-parameter search of a deep model with Optuna (shareable by many workers)",
        description="Search the fine-tuning learning rate, width and depth (parameter count within "
        "±15 %% of the neural ODE's) and eq. 5 noise of a Table 1 model by the validation loss on the "
        "VIRTUAL validation feeds. Workers running this command with the same --storage and --study "
        "share one study and stop when it holds --trials trials.",
    )
    p.add_argument("--model", choices=tuple(DEPTH), required=True, help="deep model of Table 1")
    p.add_argument(
        "--trials",
        type=int,
        default=20,
        metavar="N",
        help="trials of the study over all workers (default 20; the same for every model)",
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="journal file path or database URL (sqlite:///x.db, "
        "postgresql://…); default runs/<profile>/tuning/studies.log",
    )
    p.add_argument("--profile", choices=PROFILES, default="default", help="run profile: budgets and sizes")
    p.add_argument("--study", metavar="NAME", help="study name (default <model>-<profile>)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="torch device (auto picks CUDA when present)")
    p.set_defaults(func=tune)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m nanoutils`` and the ``nanoutils`` script."""
    parser = argparse.ArgumentParser(prog="nanoutils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebook series with papermill")
    run.add_argument("--profile", choices=PROFILES, default="default", help="run profile (default: default)")
    run.add_argument("--only", nargs="+", metavar="NN", help="run only these notebook numbers, e.g. --only 00 01")
    run.add_argument("--device", choices=DEVICES, default="auto", help="torch device (auto picks CUDA when present)")
    run.add_argument("--no-progress", action="store_true", help="hide papermill's progress bar")
    run.add_argument(
        "--max-epochs",
        type=int,
        metavar="N",
        help="cap every training run at N epochs: a quick "
        "end-to-end check of a profile (e.g. paper on a CPU), not a result",
    )
    run.set_defaults(func=_run)
    pred = sub.add_parser(
        "predict",
        help="permeate concentrations and rejections for feeds and fluxes, as CSV",
        description="Permeate concentrations and rejections for feeds × fluxes, as CSV: feed_id, "
        "Jv_m_s, Jv_LMH, ion, c_feed_mM, c_perm_mM, R, converged (with --model also c_perm_std_mM, "
        "R_std_param, R_std, extrapolated, why). Predictions are intrinsic: c_feed is the "
        "concentration at the membrane surface (no concentration-polarisation film), "
        "R = 1 − c_perm/c_feed; an observed rejection against the bulk feed is lower. With --model, "
        "R_std is the predictive standard deviation of R (the spread of the bundle's members and "
        "the calibration residual scatter in quadrature), R_std_param the members' spread alone.",
    )
    src = pred.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--feed", action="append", metavar="SALTS", help='a feed, e.g. "NaCl 10 mM + MgSO4 5 mM" (repeatable)'
    )
    src.add_argument("--feeds-csv", metavar="CSV", help="feeds, one per row: feed_id and 'salts' or '<ion>_mM' columns")
    flux = pred.add_mutually_exclusive_group(required=True)
    flux.add_argument("--flux-lmh", nargs="+", type=float, metavar="J", help="permeate fluxes in L m⁻² h⁻¹")
    flux.add_argument("--flux-m-s", nargs="+", type=float, metavar="J", help="permeate fluxes in m/s")
    model = pred.add_mutually_exclusive_group()
    model.add_argument(
        "--model",
        metavar="DIR",
        help="model bundle written by `nanoutils calibrate`: adds c_perm_std_mM, R_std_param, R_std, "
        "extrapolated and why columns",
    )
    model.add_argument(
        "--checkpoint",
        nargs="+",
        metavar="PT",
        help="trained model checkpoint(s); several = ensemble (default: DSPM-DE with the paper's NF270 parameters)",
    )
    pred.add_argument(
        "--temperature-C",
        type=float,
        metavar="T",
        help="temperature in °C (default: a bundle's "
        "calibration temperature, required when its data span several; 25 °C for the paper's NF270 "
        "parameters). Checkpoints of learned models have no temperature input and refuse it; a bundle "
        "flags a temperature outside its calibration range in extrapolated/why",
    )
    pred.add_argument("--out", metavar="CSV", help="output CSV (default: standard output)")
    pred.set_defaults(func=_predict)
    sub.add_parser(
        "profiles", help="print every setting of the smoke, default and paper profiles as one table"
    ).set_defaults(func=lambda args: print(table()) or 0)
    _add_calibrate(sub)
    _add_tune(sub)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # bad input a user can fix: say what, on one line, not a traceback
        text = str(err) if not isinstance(err, OSError) or not err.strerror else f"{err.filename}: {err.strerror}"
        print("error: " + " ".join(text.split()), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
