"""Command line: ``python -m nanoutils run …`` (see ``--help``)."""
from __future__ import annotations

import argparse
import sys

from . import ions
from .env import DEVICES
from .profiles import PROFILES, get, table


def _run(args: argparse.Namespace) -> int:
    from .runner import SeriesError, run_series, summary_table

    try:
        runs = run_series(args.profile, only=args.only, device=args.device, progress_bar=not args.no_progress,
                          max_epochs=args.max_epochs)
    except SeriesError as err:
        print(summary_table(err.runs), file=sys.stderr)
        print(f"\nERROR: {err}", file=sys.stderr)
        return 1
    print(summary_table(runs))
    out = runs[0].output.parent if runs else None
    print(f"\nexecuted notebooks: {out}")
    print(f"figures and tables: {get(args.profile).figures_dir}/")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from . import dspmde, units
    from .prediction import predict, read_feeds_csv, to_csv_frame

    if args.feeds_csv:
        ids, feeds = read_feeds_csv(args.feeds_csv)
    else:
        feeds = [ions.Feed.from_salts(text) for text in args.feed]
        ids = [str(i) for i in range(len(feeds))]
    fluxes = units.lmh_to_m_s(args.flux_lmh) if args.flux_lmh else args.flux_m_s
    if args.checkpoint:
        from .training import load_model

        model = [load_model(path) for path in args.checkpoint]
    else:
        model = dspmde.Membrane.nf270()
    frame = to_csv_frame(predict(feeds, fluxes, model), ids)
    frame.to_csv(args.out if args.out else sys.stdout, index=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m nanoutils`` and the ``nanoutils`` script."""
    parser = argparse.ArgumentParser(prog="nanoutils", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebook series with papermill")
    run.add_argument("--profile", choices=PROFILES, default="default", help="run profile (default: default)")
    run.add_argument("--only", nargs="+", metavar="NN", help="run only these notebook numbers, e.g. --only 00 01")
    run.add_argument("--device", choices=DEVICES, default="auto", help="torch device (auto picks CUDA when present)")
    run.add_argument("--no-progress", action="store_true", help="hide papermill's progress bar")
    run.add_argument("--max-epochs", type=int, metavar="N", help="cap every training run at N epochs: a quick "
                     "end-to-end check of a profile (e.g. paper on a CPU), not a result")
    run.set_defaults(func=_run)
    pred = sub.add_parser("predict", help="permeate concentrations and rejections for feeds and fluxes, as CSV")
    src = pred.add_mutually_exclusive_group(required=True)
    src.add_argument("--feed", action="append", metavar="SALTS", help='a feed, e.g. "NaCl 10 mM + MgSO4 5 mM" (repeatable)')
    src.add_argument("--feeds-csv", metavar="CSV", help="feeds, one per row: feed_id and 'salts' or '<ion>_mM' columns")
    flux = pred.add_mutually_exclusive_group(required=True)
    flux.add_argument("--flux-lmh", nargs="+", type=float, metavar="J", help="permeate fluxes in L m⁻² h⁻¹")
    flux.add_argument("--flux-m-s", nargs="+", type=float, metavar="J", help="permeate fluxes in m/s")
    pred.add_argument("--checkpoint", nargs="+", metavar="PT", help="trained model checkpoint(s); several = ensemble "
                      "(default: DSPM-DE with the paper's NF270 parameters)")
    pred.add_argument("--out", metavar="CSV", help="output CSV (default: standard output)")
    pred.set_defaults(func=_predict)
    sub.add_parser("profiles", help="print every setting of the smoke, default and paper profiles as one table"
                   ).set_defaults(func=lambda args: print(table()) or 0)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad input a user can fix: say what, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
