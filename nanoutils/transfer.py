"""The real-data transfer benchmark: calibrate on some measured feeds, predict a feed not seen.

For every feed F of a :class:`nanoutils.measurements.Measurements` (feed key ``study/feed_id``; any number of
feeds and studies) a model is calibrated on all other feeds and predicts F at its measured fluxes,
evaluated as in scoring (each feed's temperature, the film layer for observed rejections:
:func:`nanoutils.fitting.predictions`), and scored by :func:`nanoutils.metrics.rejection_error`
(mean |R_pred − R_meas| in percentage points). Each fold is labelled by what its training feeds
covered: ``"ions seen"`` when every ion of F occurs in some training feed, else ``"ion X unseen"``.
Headline, in this order: (a) the mean over "ions seen" folds, (b) the mean over all folds, (c) the
in-sample error (calibrated on all feeds, scored on them); over seeds, their mean and spread.

A model is given by its calibration, ``calibrate(train: Measurements, seed: int) -> model``, where the
model is anything :func:`nanoutils.fitting.predictions` takes (a :class:`dspmde.Membrane`, a model with
DSPM-DE's ``solve``), a torch model (``.parameters()`` and ``.config.species``), or a list of such
models (an ensemble: the mean is scored, the spread ``R_std`` gives a 95 % predictive interval with
the measurement σ, and the share of measured points inside it is reported). Points a model cannot
predict (NaN) are counted and named per fold, never dropped silently; a model with ``missing_ions(ions)``
(as :class:`nanoutils.friction.SFModel`, one parameter per ion) declines every feed holding an ion it
has no parameter for: that feed's points are NaN.

>>> from nanoutils import measurements, transfer, dspmde_plus
>>> bench = transfer.benchmark(measurements.load_dataset("nf270_fdl2021"), dspmde_plus.CALIBRATIONS)  # doctest: +SKIP
>>> bench.headline()                                                                          # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import fitting, ions
from ._files import atomic_path
from .measurements import Measurements
from .metrics import rejection_error
from .profiles import Profile, get

Calibrate = Callable[[Measurements, int], object]
SEEN = "ions seen"
IN_SAMPLE = "in-sample"
#: z of the two-sided 95 % predictive interval of an ensemble (member spread and measurement σ in quadrature).
Z95 = 1.959964


class LeakageError(AssertionError):
    """A test feed's rows reached the calibration of its own fold."""


def feed_ions(meas: Measurements, keys: Sequence[str]) -> set[str]:
    """The ions present (c > 0) in any of the feeds ``keys`` of ``meas``."""
    return {ion for k in keys for ion, c in meas.feeds[k].items() if c > 0}


def coverage(meas: Measurements, test_key: str, train_keys: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Label of a fold ("ions seen" or "ion X unseen" / "ions X, Y unseen") and its unseen ions, in
    the order of the ion table."""
    unseen = feed_ions(meas, [test_key]) - feed_ions(meas, train_keys)
    order = ions.species()
    names = tuple(sorted(unseen, key=lambda s: order.index(s) if s in order else len(order)))
    if not names:
        return SEEN, ()
    return f"ion{'s' if len(names) > 1 else ''} {', '.join(names)} unseen", names


def check_no_leak(train: Measurements, test_keys: Sequence[str]) -> None:
    """Raise :class:`LeakageError` if any row or feed of ``test_keys`` is in ``train``."""
    leaked = (set(train.feed_keys) | set(train.table["feed_key"])) & set(test_keys)
    if leaked:
        raise LeakageError(f"test feed(s) {sorted(leaked)} reached the calibration data")


def _ensemble_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Member frames (same rows) → one frame: R_pred the mean over members that predict a point,
    R_std their spread, converged where at least one member predicts it."""
    R = np.stack([f["R_pred"].to_numpy(float) for f in frames])
    ok = np.isfinite(R)
    out = frames[0].copy()
    with np.errstate(invalid="ignore"):
        count = ok.sum(0)
        mean = np.where(ok, R, 0.0).sum(0) / np.maximum(count, 1)
        var = np.where(ok, (R - mean) ** 2, 0.0).sum(0) / np.maximum(count, 1)
    out["R_pred"] = np.where(count > 0, mean, np.nan)
    out["R_std"] = np.where(count > 0, np.sqrt(var), np.nan)
    out["converged"] = count > 0
    out["residual"] = (out["R_pred"] - out["R_meas"]) / out["sigma_R"]
    return out


def _torch_frame(meas: Measurements, model) -> pd.DataFrame:
    from .prediction import _torch_permeate

    a = meas.arrays(tuple(model.config.species))
    c_perm = np.stack([_torch_permeate(model, a.c_feed[n : n + 1], a.Jv[n], 256)[0] for n in range(len(a.feed_keys))])
    return fitting.prediction_frame(a, c_perm, np.isfinite(c_perm).all(axis=-1))


def declined_feeds(meas: Measurements, model) -> list[str]:
    """The feeds of ``meas`` the model (or any member of an ensemble) cannot predict: those with an ion its
    ``missing_ions`` names (none for a model without that method)."""
    if isinstance(model, (list, tuple)):
        return list(dict.fromkeys(k for m in model for k in declined_feeds(meas, m)))
    missing = getattr(model, "missing_ions", None)
    return [] if missing is None else [k for k in meas.feed_keys if missing(feed_ions(meas, [k]))]


def _declined_frame(meas: Measurements) -> pd.DataFrame:
    """The frame of :func:`nanoutils.fitting.predictions` for feeds a model declines: every R_pred NaN."""
    a = meas.arrays()
    c_perm = np.full((*a.Jv.shape, len(a.species)), np.nan)
    return fitting.prediction_frame(a, c_perm, np.zeros(a.Jv.shape, bool))


def predict_points(meas: Measurements, model) -> pd.DataFrame:
    """One row per measurement of ``meas`` with the model's R_pred (NaN where it cannot predict, including
    every point of a feed it declines, :func:`declined_feeds`), the frame of
    :func:`nanoutils.fitting.predictions`; an ensemble (list) adds R_std (see module docstring)."""
    if isinstance(model, (list, tuple)):
        if not model:
            raise ValueError("an ensemble needs at least one member model, got an empty list")
        return _ensemble_frame([predict_points(meas, m) for m in model])
    if hasattr(model, "parameters") and hasattr(model, "config"):
        return _torch_frame(meas, model)
    declined = declined_feeds(meas, model)
    if not declined:
        return fitting.predictions(meas, model)
    kept = [k for k in meas.feed_keys if k not in declined]
    parts = [_declined_frame(meas.subset(declined))] + ([fitting.predictions(meas.subset(kept), model)] if kept else [])
    order = {k: i for i, k in enumerate(meas.feed_keys)}
    frame = pd.concat(parts, ignore_index=True)
    return frame.iloc[np.argsort(frame["feed_id"].map(order).to_numpy(), kind="stable")].reset_index(drop=True)


def _fold_row(frame: pd.DataFrame) -> dict:
    """Error (pp) over the predictable points of one fold, and the points it could not predict."""
    finite = np.isfinite(frame["R_pred"].to_numpy(float))
    bad = frame[~finite]
    row = {
        "n_points": int(finite.sum()),
        "n_nan": int((~finite).sum()),
        "nan_points": "; ".join(f"{r.feed_id} {r.ion} at {r.Jv_um_s:.3g} µm/s" for r in bad.itertuples()),
        "error_pp": rejection_error(frame[finite]).value if finite.any() else np.nan,
    }
    if "R_std" in frame:
        f = frame[finite]
        half = Z95 * np.sqrt(f["R_std"] ** 2 + f["sigma_R"] ** 2)
        row["interval_coverage"] = float(((f["R_meas"] - f["R_pred"]).abs() <= half).mean()) if len(f) else np.nan
        row["mean_R_std_pp"] = float(100 * f["R_std"].mean()) if len(f) else np.nan
    return row


@dataclass
class Benchmark:
    """The benchmark's outcome: ``points`` (one row per model, seed, fold and measurement: split
    "transfer" or "in-sample", fold = the held-out feed key or "in-sample", ions = the coverage label,
    and the :func:`predict_points` columns), ``folds`` (one row per model, seed and fold: coverage,
    unseen ions, error_pp over predictable points, n_points, n_nan and which points were NaN, and for
    ensembles interval_coverage and mean_R_std_pp) and the calibrated ``models`` by (name, seed, fold)."""

    points: pd.DataFrame
    folds: pd.DataFrame
    models: dict[tuple[str, int, str], object] = field(repr=False, default_factory=dict)

    def headline(self) -> pd.DataFrame:
        """Per model: (a) mean error over "ions seen" folds, (b) over all folds, (c) in-sample (pp), each
        the mean over seeds with its spread (sample std over seeds, NaN from one seed), the number of folds
        of each kind, of transfer folds it could not predict at all (their mean leaves them out), of seeds
        (transfer and in-sample) and of NaN points, and the summed calibration time (s); ensembles add the
        mean interval coverage over transfer folds."""
        rows = []
        for name, g in self.folds.groupby("model", sort=False):
            per_seed = []
            for _, s in g.groupby("seed"):
                t = s[s["split"] == "transfer"]
                per_seed.append(
                    {
                        "seen": t.loc[t["ions"] == SEEN, "error_pp"].mean(),
                        "all": t["error_pp"].mean(),
                        "in": s.loc[s["split"] == IN_SAMPLE, "error_pp"].mean(),
                        "cov": t["interval_coverage"].mean() if "interval_coverage" in t else np.nan,
                    }
                )
            ps = pd.DataFrame(per_seed)
            transfer = g[g["split"] == "transfer"]
            t0 = transfer[transfer["seed"] == transfer["seed"].iloc[0]] if len(transfer) else transfer
            row = {
                "model": name,
                "ions seen (pp)": ps["seen"].mean(),
                "ions seen spread": ps["seen"].std(),
                "all folds (pp)": ps["all"].mean(),
                "all folds spread": ps["all"].std(),
                "in-sample (pp)": ps["in"].mean(),
                "in-sample spread": ps["in"].std(),
                "folds ions seen": int((t0["ions"] == SEEN).sum()),
                "folds": len(t0),
                "folds not predicted": int((t0["n_points"] == 0).sum()),
                "seeds": transfer["seed"].nunique(),
                "in-sample seeds": g.loc[g["split"] == IN_SAMPLE, "seed"].nunique(),
                "NaN points": int(g["n_nan"].sum()),
                "calibration (s)": float(g["calibrate_s"].sum()) if "calibrate_s" in g else np.nan,
            }
            if ps["cov"].notna().any():
                row["95% interval coverage"] = ps["cov"].mean()
            rows.append(row)
        return pd.DataFrame(rows).set_index("model")

    def best(self, names: Sequence[str]) -> str | None:
        """The row of ``names`` with the lowest mean error over all transfer folds among those that predicted
        every point (a mean over fewer points is not comparable); None when none did."""
        head = self.headline()
        ok = head.loc[[n for n in names if n in head.index]]
        ok = ok[(ok["NaN points"] == 0) & ok["all folds (pp)"].notna()]
        return None if ok.empty else str(ok["all folds (pp)"].idxmin())

    def _abs(self) -> pd.DataFrame:
        p = self.points[np.isfinite(self.points["R_pred"].to_numpy(float))]
        return p.assign(error_pp=100 * (p["R_pred"] - p["R_meas"]).abs())

    def per_quantity(self) -> pd.DataFrame:
        """Mean error (pp, over seeds and flux points) per model, fold and measured quantity."""
        return (
            self._abs().groupby(["model", "split", "fold", "ions", "ion"], sort=False)["error_pp"].mean().unstack("ion")
        )

    def per_flux(self) -> pd.DataFrame:
        """Mean error (pp, over seeds and quantities) per model, fold and flux (µm/s)."""
        return (
            self._abs().groupby(["model", "split", "fold", "Jv_um_s"], sort=False)["error_pp"].mean().unstack("model")
        )


@functools.cache
def _source_digest() -> str:
    """SHA-256 of the package's own files (code and packaged data): a cached calibration is stale when any changed."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def calibration_key(name: str, train: Measurements, profile: Profile, seed: int) -> str:
    """Cache key of one mechanistic calibration: model name, profile (its fit budgets; an epoch cap changes none),
    seed, the training rows (:meth:`Measurements.digest`: not where they were read from) and the package's files
    (:func:`_source_digest`) — everything such a fit depends on."""
    h = hashlib.sha256()
    for part in (name, profile.name, str(seed), _source_digest()):
        h.update(part.encode() + b"\0")
    h.update(train.digest().encode())
    return h.hexdigest()[:24]


class _RegistryRow:
    """``calibrate(train, seed)`` of registry model ``name`` (:func:`registry_rows`); ``seconds`` is the wall time of
    the fit behind the last model returned — for a fit read back from ``cache``, that of the run which made it."""

    def __init__(self, name: str, profile: Profile, cache: Path | None) -> None:
        from . import calibration

        self.cal = calibration.calibrator(name)  # an unknown name fails here, before any fit
        self.name, self.profile, self.seconds = name, profile, float("nan")
        self.cache = cache if self.cal.kind == "mechanistic" else None

    def __call__(self, train: Measurements, seed: int) -> object:
        from . import calibration

        path = None
        if self.cache is not None:
            path = self.cache / self.name / f"{calibration_key(self.name, train, self.profile, seed)}.json"
            if path.exists() and path.with_suffix(".seconds").exists():
                self.seconds = float(path.with_suffix(".seconds").read_text())
                return self.cal.member.load(path)
        t0 = time.perf_counter()
        fitted = calibration.calibrate(self.name, train, profile=self.profile, seeds=[seed])
        model = fitted.members[0] if fitted.point_estimate else fitted.model
        self.seconds = time.perf_counter() - t0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path.with_suffix(".seconds")) as tmp:
                tmp.write_text(repr(self.seconds))
            with atomic_path(path) as tmp:  # last: a model file always has its seconds beside it
                self.cal.member.save(model, tmp)
        return model


def registry_rows(
    names: Sequence[str], *, profile: str | Profile = "default", cache: str | os.PathLike | None = None
) -> dict[str, Calibrate]:
    """Rows of :func:`benchmark` for models of the calibrate registry (:data:`nanoutils.calibration.CALIBRATORS`):
    every fold calibrates exactly as ``nanoutils calibrate NAME --profile PROFILE`` does, one seed per run. A
    mechanistic bundle is scored by its fitted parameter set (its point estimate), a learned one by its members'
    mean. ``cache``: a directory where a mechanistic fit is stored under :func:`calibration_key` and reused by a
    later call with the same key (chapters 02 and 06 fit the same folds), its fit time with it; learned models,
    whose fits also depend on checkpoint files, are always calibrated."""
    P, where = get(profile), None if cache is None else Path(cache)
    return {name: _RegistryRow(name, P, where) for name in names}


def benchmark(
    meas: Measurements,
    models: Mapping[str, Calibrate],
    *,
    seeds: Sequence[int] | Mapping[str, Sequence[int]] = (0,),
    in_sample: bool | Mapping[str, Sequence[int]] = True,
    keep_models: bool = True,
    held_out: Sequence[str] | None = None,
) -> Benchmark:
    """Leave-one-feed-out transfer of every model of ``models`` (row name → calibrate callable) on
    ``meas``, for every seed of ``seeds`` (one list for all rows, or a list per row name), plus the
    in-sample calibration if ``in_sample`` (True: for every seed; a mapping: the seeds per row name, none
    for a row it leaves out). ``held_out``: the feed keys to hold out in turn (default every feed). Every
    calibration is checked to hold no row of its test feed (:class:`LeakageError`); the fold rows record its
    wall time (``calibrate_s``: a row with a ``seconds`` attribute, as :func:`registry_rows`' are, gives its fit's
    own, so a fit read from a cache counts the time it took when it was made)."""
    keys = meas.feed_keys
    if len(keys) < 2:
        raise ValueError(f"the transfer benchmark needs at least 2 feeds, got {list(keys)}")
    if not models:
        raise ValueError("no models to benchmark")
    for what, given in (("seeds", seeds), ("in_sample", in_sample)):
        extra = set(given) - set(models) if isinstance(given, Mapping) else set()
        if extra:
            raise ValueError(f"{what} names row(s) {sorted(extra)} not among the models {list(models)}")
    per_row = seeds if isinstance(seeds, Mapping) else dict.fromkeys(models, seeds)
    if isinstance(in_sample, Mapping):
        in_seeds = {name: [int(s) for s in in_sample.get(name, ())] for name in models}
    else:
        in_seeds = {name: [int(s) for s in per_row.get(name, ())] if in_sample else [] for name in models}
    unknown = set(held_out or ()) - set(keys)
    if unknown:
        raise ValueError(f"held_out feed(s) {sorted(unknown)} not in the data; feeds: {list(keys)}")
    folds = []
    for key in keys if held_out is None else [k for k in keys if k in held_out]:
        train_keys = [k for k in keys if k != key]
        label, unseen = coverage(meas, key, train_keys)
        folds.append(("transfer", key, label, unseen, meas.subset(train_keys), meas.subset([key])))
    whole = (IN_SAMPLE, IN_SAMPLE, SEEN, (), meas, meas)
    points, rows, kept = [], [], {}
    for name, calibrate in models.items():
        runs = [(int(seed), f) for seed in per_row.get(name, ()) for f in folds]
        runs += [(seed, whole) for seed in in_seeds[name]]
        if not runs:
            raise ValueError(f"row {name!r} has no seeds to run")
        for seed, (split, fold, label, unseen, train, test) in runs:
            if split == "transfer":
                check_no_leak(train, [fold])
            t0 = time.perf_counter()
            model = calibrate(train, seed)
            seconds = getattr(calibrate, "seconds", time.perf_counter() - t0)  # a cached fit: the time it took
            if keep_models:
                kept[(name, seed, fold)] = model
            frame = predict_points(test, model)
            meta: dict[str, Any] = {"model": name, "seed": seed, "split": split, "fold": fold, "ions": label}
            points.append(frame.assign(**meta))
            rows.append({**meta, "unseen": ", ".join(unseen), **_fold_row(frame), "calibrate_s": seconds})
    first = ["model", "seed", "split", "fold", "ions"]
    frame = pd.concat(points, ignore_index=True)
    return Benchmark(frame[first + [c for c in frame.columns if c not in first]], pd.DataFrame(rows), kept)


def plot(
    bench: Benchmark,
    meas: Measurements,
    names: Sequence[str] | None = None,
    *,
    seed: int = 0,
    n_points: int = 60,
    ncols: int = 3,
):
    """Per transfer fold, rejection vs flux (µm/s) of the held-out feed: the measurements ± σ and the
    curves of the models ``names`` (default all) calibrated without it (solid, dashed, …; an ensemble
    with its ±2 R_std band; a model that declines the feed, :func:`declined_feeds`, is named in the panel
    instead), the rejection axis cut to the measurements' range. Returns the figure."""
    import matplotlib.pyplot as plt

    from . import plotting

    names = list(names or dict.fromkeys(m for m, _, _ in bench.models))
    folds = [k for k in meas.feed_keys if any((n, seed, k) in bench.models for n in names)]
    if not folds:
        raise ValueError(f"no calibrated models of {names} for seed {seed}; run benchmark(keep_models=True)")
    nrows = -(-len(folds) // ncols)
    fig, axes = plt.subplots(
        nrows, min(ncols, len(folds)), figsize=(4.2 * min(ncols, len(folds)), 3.4 * nrows), squeeze=False
    )
    labels = bench.folds.drop_duplicates("fold").set_index("fold")["ions"]
    for ax, key in zip(axes.flat, folds, strict=False):  # spare panels stay empty
        test = meas.subset([key])
        calibrated = {n: bench.models.get((n, seed, key)) for n in names}
        declined = [n for n, m in calibrated.items() if m is not None and declined_feeds(test, m)]
        predictors = {n: None if n in declined else m for n, m in calibrated.items()}
        plotting.rejection_curves(ax, test, predictors, n_points=n_points, flux_scale_m_s=1e-6)
        if declined:
            ax.text(0.02, 0.02, f"not predicted: {', '.join(declined)}", transform=ax.transAxes, fontsize=7)
        lo, hi = test.table["R"].min(), test.table["R"].max()
        pad = 0.25 * max(hi - lo, 0.2)
        ax.set(title=f"{key}\n({labels.get(key, '')})", xlabel="flux (µm/s)", ylim=(lo - pad, max(hi, 1.0) + pad))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(folds) :]:
        ax.set_visible(False)
    styles = ("-", "--", ":", "-.")
    handles = [plt.Line2D([], [], color="0.2", ls=styles[i % len(styles)]) for i in range(len(names))]
    fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
