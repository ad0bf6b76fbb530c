"""Command line: ``python -m nanoutils run …`` (see ``--help``)."""
from __future__ import annotations

import argparse
import sys

from .env import DEVICES
from .profiles import PROFILES


def _run(args: argparse.Namespace) -> int:
    from .runner import SeriesError, run_series, summary_table

    try:
        runs = run_series(args.profile, only=args.only, device=args.device, progress_bar=not args.no_progress)
    except SeriesError as err:
        print(summary_table(err.runs), file=sys.stderr)
        print(f"\nERROR: {err}", file=sys.stderr)
        return 1
    print(summary_table(runs))
    out = runs[0].output.parent if runs else None
    print(f"\nexecuted notebooks: {out}")
    print(f"figures and tables: {'runs/smoke/figures' if args.profile == 'smoke' else 'figures'}/")
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
    run.set_defaults(func=_run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
