"""SDEM on the real NF270 data (FdL 2021, 75 points, 3 feeds): validation and transfer.

    .venv/bin/python benchmarks/sdem_fdl2021.py [--starts 3] [--fit-exponent]

1. Per-feed fit (permeances per ion and feed, as the source paper fits each feed) to the measurements:
   mean |R − R_authors| per feed against the authors' SDEM curves (``x_R_authors_SDEM_fit``), and
   mean |R − R_meas|; then the same model fitted to the authors' curves themselves (does this SDEM
   contain their curves?).
2. Transfer form (one set of permeances for all feeds; ``--fit-exponent`` adds P ∝ c_eq^a): in-sample
   error per feed, and leave-one-feed-out (calibrate on 2 feeds, predict the 3rd) per held-out feed,
   each fold marked "ions seen" or "ion X unseen"; with ``fallback="diffusivity"`` for unseen ions.
Errors are mean absolute rejection errors in pp (:func:`nanoutils.metrics.rejection_error`); the
solve for scoring uses :data:`nanoutils.sdem.DEFAULT_CELLS` cells. Prints markdown tables and the fitted parameters.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd

from nanoutils import data, fitting, metrics, sdem
from nanoutils.data import Measurements


def scored(meas: data.Measurements, models: dict[str, sdem.SDEMModel]) -> pd.DataFrame:
    """One row per measurement: feed, quantity, Jv, R_meas, R_pred (NaN: not predicted), R_authors."""
    frames = []
    for key, model in models.items():
        sub = meas.subset([key])
        obj = fitting.Objective(sub, n_cells=sdem.DEFAULT_CELLS)
        a = obj.arrays
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sdem.MissingPermeanceWarning)
            R = a.model_rejection(obj.permeate(model)[0])
        rows = sub.table.iloc[a.row[a.mask]]
        n, m, q = np.nonzero(a.mask)
        frames.append(
            pd.DataFrame(
                {
                    "feed_id": key,
                    "ion": np.asarray(a.quantities, dtype=object)[q],
                    "Jv_um_s": 1e6 * a.Jv[n, m],
                    "R_meas": a.R[a.mask],
                    "R_pred": R[a.mask],
                    "R_authors": pd.to_numeric(rows["x_R_authors_SDEM_fit"]).to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def pp(frame: pd.DataFrame) -> float:
    """Mean absolute rejection error (pp) over the predicted rows."""
    ok = frame[frame["R_pred"].notna()]
    return metrics.rejection_error(ok).value if len(ok) else float("nan")


def authors_curves(meas: Measurements) -> Measurements:
    """The rows that have an authors' SDEM value, with that value as the "measured" R (σ 0.02)."""
    t = meas.table.copy()
    t["R"] = pd.to_numeric(t["x_R_authors_SDEM_fit"])
    t = t[t["R"].notna()].reset_index(drop=True)
    t["sigma_R"] = 0.02
    return Measurements(t, meas.feeds, meas.default_sigma_R)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--fit-exponent", action="store_true")
    args = parser.parse_args()
    meas = data.load_dataset("nf270_fdl2021")

    per = sdem.fit(meas, per_feed=True, n_starts=args.starts)
    s = scored(meas, per.models)
    print(f"## Per-feed SDEM fit ({per.wall_s:.1f} s, chi2 {per.chi2:.1f} on {per.n_points} points)\n")
    print("| feed | mean abs(R - R_authors) pp | mean abs(R - R_meas) pp | authors vs meas pp |")
    print("|---|---|---|---|")
    for key, g in s.groupby("feed_id"):
        a = g[g["R_authors"].notna()]
        print(
            f"| {key} | {100 * (a.R_pred - a.R_authors).abs().mean():.2f} (n={len(a)}) | {pp(g):.2f} | "
            f"{100 * (a.R_authors - a.R_meas).abs().mean():.2f} |"
        )
    print("\n" + per.table().to_string(float_format="%.4g") + f"\n\nat bounds: {per.at_bounds}\n")
    curves = authors_curves(meas)
    on_curves = sdem.fit(curves, per_feed=True, n_starts=args.starts)
    s = scored(curves, on_curves.models)
    print(f"Fitted to the authors' curves ({on_curves.wall_s:.1f} s): mean abs(R - R_authors) pp per feed")
    for key, g in s.groupby("feed_id"):
        per_q = (100 * (g.R_pred - g.R_meas).abs()).groupby(g.ion).mean().round(2).to_dict()
        print(f"| {key} | {pp(g):.2f} | per quantity: {per_q} |")
    print("\n" + on_curves.table().to_string(float_format="%.4g") + f"\n\nat bounds: {on_curves.at_bounds}\n")

    shared = sdem.fit(meas, n_starts=args.starts, fit_exponent=args.fit_exponent)
    s = scored(meas, dict.fromkeys(meas.feed_keys, shared.model))
    print(
        f"## Transfer form: one set of permeances ({shared.wall_s:.1f} s, chi2 {shared.chi2:.1f}, "
        f"starts reached {[round(v, 1) for v in shared.starts]})\n"
    )
    print(shared.table().to_string(float_format="%.4g") + f"\n\nat bounds: {shared.at_bounds}\n")
    print(shared.correlation.round(2).to_string() + "\n")
    print("| feed | in-sample pp |\n|---|---|")
    for key, g in s.groupby("feed_id"):
        print(f"| {key} | {pp(g):.2f} |")
    print(f"| all | {pp(s):.2f} |\n")

    print("## Leave one feed out (calibrate on 2 feeds, predict the 3rd)\n")
    print("| held-out feed | coverage | fit s | pp (no fallback) | predicted points | pp (fallback diffusivity) |")
    print("|---|---|---|---|---|---|")
    for name, train, test in data.group_folds(meas):
        f = sdem.fit(train, n_starts=args.starts, fit_exponent=args.fit_exponent)
        seen = set(f.model.species)
        unseen = sorted({i for k in test.feed_keys for i, c in test.feeds[k].items() if c > 0} - seen)
        cover = "ions seen" if not unseen else f"ion {', '.join(unseen)} unseen"
        plain = scored(test, dict.fromkeys(test.feed_keys, f.model))
        fb = sdem.SDEMModel(f.model.permeance, exponent=f.model.exponent, fallback="diffusivity")
        back = scored(test, dict.fromkeys(test.feed_keys, fb))
        print(
            f"| {name} | {cover} | {f.wall_s:.1f} | {pp(plain):.2f} | {int(plain.R_pred.notna().sum())}/"
            f"{len(plain)} | {pp(back):.2f} |"
        )


if __name__ == "__main__":
    main()
