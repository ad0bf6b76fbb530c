"""Model bundles: a calibrated model in a directory, and predictions with uncertainty and validity flags.

A bundle DIR (written by :meth:`Bundle.save`, atomically: built next to DIR, renamed at the end) holds

* ``model.json`` — registry name (:data:`nanoutils.calibration.CALIBRATORS`), kind, bundle format and package
  version, the member files, and each fit's info (fitted values ± σ, parameters at a bound);
* ``member_<k>.json`` / ``.pt`` — one file per member (seed or posterior draw);
* ``provenance.json`` — data files with SHA-256, package version, profile, seeds, command line, UTC date;
* ``domain.json`` — what the calibration saw: ions, concentration range per ion (mM), ionic strength range
  (mM), flux range (LMH), temperature range (°C), and for learned models the pre-training domain;
* ``report/`` — in-sample errors per point, per feed and per ion (CSV, pp), parity and residual plots
  (PNG), ``summary.md``.

:func:`load` reads it back (a bundle from a newer bundle format or package version is refused) and
:func:`nanoutils.predict` takes the :class:`Bundle`: at the temperature of the calibration data (or one given),
the prediction (the fit's, or the ensemble mean), ``R_std_param`` (spread of the members: parameter or seed
uncertainty), ``R_std`` (predictive standard deviation: ``R_std_param`` and the calibration residual scatter
``residual_sd`` in quadrature), and per row ``extrapolated`` and ``why`` from the domain, with one
:class:`ExtrapolationWarning` per call. Predictions are intrinsic (the feed is at the membrane surface).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__, ions, units
from .measurements import Measurements

FORMAT_VERSION = 1
MODEL_JSON, PROVENANCE_JSON, DOMAIN_JSON, REPORT_DIR = "model.json", "provenance.json", "domain.json", "report"
_RTOL = 1e-6  # relative slack of the domain checks
_T_SLACK_C = 0.05  # °C: calibration temperatures closer than this count as one


class BundleError(ValueError):
    """A directory that is not a loadable model bundle (missing, corrupt, newer); the message names the path."""


class ExtrapolationWarning(UserWarning):
    """Some predicted rows lie outside the bundle's domain; one per prediction call, summarising them."""


def _ionic_strength(feed) -> float:
    return 0.5 * sum(ions.get(i).z ** 2 * c for i, c in feed.items())


def _span(values) -> list[float]:
    v = np.asarray(list(values), float)
    return [float(v.min()), float(v.max())]


def domain_of(meas: Measurements, pretraining: dict[str, Any] | None = None) -> dict[str, Any]:
    """The calibration domain of ``meas`` in display units (mM = mol/m³, LMH, °C), plus ``pretraining``."""
    feeds = list(meas.feeds.values())
    seen = {i for f in feeds for i in f}
    species = [i for i in ions.species() if i in seen]
    return {
        "ions": species,
        "c_mM": {i: _span(f[i] for f in feeds if i in f) for i in species},
        "ionic_strength_mM": _span(_ionic_strength(f) for f in feeds),
        "flux_LMH": _span(units.m_s_to_lmh(meas.table["Jv_m_s"])),
        "T_C": _span(meas.table["T_K"] - 273.15),
        "pretraining": pretraining,
    }


def _outside(value: float, bounds: Sequence[float], what: str, unit: str, where: str) -> list[str]:
    lo, hi = bounds
    if value > hi * (1 + _RTOL):
        return [f"{what} {value:.3g} {unit} > {hi:.3g} {unit} {where}"]
    if value < lo * (1 - _RTOL):
        return [f"{what} {value:.3g} {unit} < {lo:.3g} {unit} {where}"]
    return []


def feed_reasons(feed, domain: dict[str, Any]) -> list[str]:
    """Why a feed (mol/m³) lies outside ``domain``: unseen ions, concentrations and ionic strength out of range."""
    out = [f"{i} not in calibration data" for i in feed if i not in domain["ions"]]
    for i, c in feed.items():
        if i in domain["c_mM"]:
            out += _outside(c, domain["c_mM"][i], i, "mM", "seen")
    out += _outside(_ionic_strength(feed), domain["ionic_strength_mM"], "ionic strength", "mM", "seen")
    pre = domain.get("pretraining")
    if pre:
        for i, c in feed.items():
            out += _outside(c, pre["c_mM"], i, "mM", "pre-trained")
    return out


def temperature_reasons(T_C: float, domain: dict[str, Any], learned: bool = False) -> list[str]:
    """Why a temperature (°C) lies outside ``domain``: outside the calibration range. A ``learned`` model has no
    temperature input (it predicts as at the temperature of the data it was fitted to), which the reason says."""
    lo, hi = domain["T_C"]
    out = (
        [f"temperature {T_C:.3g} °C > {hi:.3g} °C seen"]
        if T_C > hi + _T_SLACK_C
        else [f"temperature {T_C:.3g} °C < {lo:.3g} °C seen"]
        if T_C < lo - _T_SLACK_C
        else []
    )
    return [f"{out[0]} (the model has no temperature input)"] if out and learned else out


def flux_reasons(flux_m_s: float, domain: dict[str, Any]) -> list[str]:
    """Why a flux lies outside ``domain`` (zero flux never does: every model gives R = 0 there)."""
    j = float(units.m_s_to_lmh(flux_m_s))
    if j == 0:
        return []
    out = _outside(j, domain["flux_LMH"], "flux", "LMH", "seen")
    pre = domain.get("pretraining")
    return out + (_outside(j, pre["flux_LMH"], "flux", "LMH", "pre-trained") if pre else [])


@dataclass
class Bundle:
    """A calibrated model: registry ``name``, ``kind``, ``members`` (one or more models), ``domain``
    (:func:`domain_of`), ``provenance``, per-fit ``info``, the in-sample ``scored`` points (None when loaded) and
    ``point_estimate``: True when the first member is the fitted parameter set and the others are posterior
    draws (predictions are then the first member's, the spread that of all members), False for an ensemble
    whose predictions are the members' mean; ``residual_sd``: the calibration residual scatter of R
    (:func:`residual_sd`), added in quadrature to the members' spread to give the predictive ``R_std``."""

    name: str
    kind: str
    members: list
    domain: dict[str, Any]
    provenance: dict[str, Any]
    info: list[dict[str, Any]]
    scored: pd.DataFrame | None = None
    point_estimate: bool = False
    residual_sd: float = 0.0

    @property
    def model(self):
        """What :func:`nanoutils.predict` takes: the single member, or the list of members."""
        return self.members[0] if len(self.members) == 1 else list(self.members)

    def score(self, meas: Measurements) -> pd.DataFrame:
        """Every measurement of ``meas`` with this bundle's prediction and ``R_std`` (:func:`score_points`)."""
        return score_points(self.members, meas, self.point_estimate, self.residual_sd)

    def temperature_K(self, temperature: float | None = None) -> float:
        """The temperature (K) to predict at: ``temperature`` if given, else the calibration data's; data
        spanning several temperatures need ``temperature`` (:class:`BundleError` otherwise)."""
        from .dspmde import check_temperature

        if temperature is not None:
            return check_temperature(temperature)
        lo, hi = self.domain["T_C"]
        if hi - lo > 2 * _T_SLACK_C:
            raise BundleError(
                f"the {self.name} bundle was calibrated at {lo:g}–{hi:g} °C: give the temperature to "
                "predict at (--temperature-C, or temperature= in K)"
            )
        return 0.5 * (lo + hi) + 273.15

    def predict_frame(
        self, feeds, fluxes_m_s, *, temperature: float | None = None, batch_size: int = 256
    ) -> pd.DataFrame:
        """:func:`nanoutils.predict` of the members at ``temperature`` (K; default :meth:`temperature_K`):
        ``c_perm`` and ``R`` (the fit's with ``point_estimate``, else the members' mean), ``c_perm_std`` and
        ``R_std_param`` (the members' spread: 0 for one member), ``R_std`` (predictive standard deviation,
        ``hypot(R_std_param, residual_sd)``), ``extrapolated`` and ``why`` per row; warns once
        (:class:`ExtrapolationWarning`) when any row extrapolates. Nothing is clipped. Each member is evaluated
        once, on all feeds × fluxes in one batch. A feed with an ion a learned model does not know raises
        :class:`BundleError`."""
        from .prediction import _as_feed_list, _fluxes, ensemble_frame, members_permeate

        feed_list = _as_feed_list(feeds)
        fluxes = _fluxes(fluxes_m_s)
        T = self.temperature_K(temperature)
        known = self.domain.get("pretraining", None)
        if known:
            for n, f in enumerate(feed_list):
                bad = [i for i in f if i not in known["ions"]]
                if bad:
                    raise BundleError(
                        f"feed {n}: the {self.name} model cannot take {', '.join(bad)} "
                        f"(it knows {', '.join(known['ions'])})"
                    )
        learned = hasattr(self.members[0], "parameters")
        species, conc, permeate = members_permeate(
            self.members, feed_list, fluxes, temperature=None if learned else T, batch_size=batch_size
        )
        frame = ensemble_frame(species, conc, fluxes, permeate, permeate[0] if self.point_estimate else None)
        frame["R_std_param"] = frame.pop("R_std")
        frame["R_std"] = np.hypot(frame["R_std_param"], self.residual_sd)
        common = temperature_reasons(T - 273.15, self.domain, learned)
        by_feed = ["; ".join(feed_reasons(f, self.domain) + common) for f in feed_list]
        by_flux = ["; ".join(flux_reasons(j, self.domain)) for j in fluxes]
        why = np.array([[("; " if a and b else "").join((a, b)) for b in by_flux] for a in by_feed], dtype=object)
        n_idx, m_idx, _ = np.nonzero(np.broadcast_to(conc[:, None, :] > 0, permeate.shape[1:]))
        frame["why"] = why[n_idx, m_idx]
        frame["extrapolated"] = frame["why"].str.len() > 0
        frame = frame[[c for c in frame.columns if c != "why"] + ["why"]]
        if frame["extrapolated"].any():
            warnings.warn(ExtrapolationWarning(summary(frame)), stacklevel=3)
        return frame

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the bundle to ``directory`` atomically (an existing bundle there is replaced; any other
        existing path is refused). Returns the directory."""
        from .calibration import calibrator

        directory = Path(directory)
        parent = directory.parent.resolve()
        if not parent.is_dir():
            raise BundleError(f"{directory}: cannot write there, directory {directory.parent} does not exist")
        if (
            directory.exists()
            and not (directory / MODEL_JSON).is_file()
            and (not directory.is_dir() or any(directory.iterdir()))
        ):
            raise BundleError(f"{directory}: exists and is not a model bundle; not overwriting it")
        fmt = calibrator(self.name).member
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent))
        try:
            names = [f"member_{k}{fmt.suffix}" for k in range(len(self.members))]
            for name, member in zip(names, self.members, strict=True):
                fmt.save(member, tmp / name)
            _write_json(
                tmp / MODEL_JSON,
                {
                    "name": self.name,
                    "kind": self.kind,
                    "format": FORMAT_VERSION,
                    "nanoutils_version": __version__,
                    "members": names,
                    "fits": self.info,
                    "point_estimate": self.point_estimate,
                    "residual_sd": self.residual_sd,
                },
            )
            _write_json(tmp / PROVENANCE_JSON, self.provenance)
            _write_json(tmp / DOMAIN_JSON, self.domain)
            if self.scored is not None and len(self.scored):
                write_report(self, tmp / REPORT_DIR)
            old = None
            if directory.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=parent))
                os.replace(directory, old / "bundle")
            os.replace(tmp, directory)
            if old is not None:
                shutil.rmtree(old)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory


def summary(frame: pd.DataFrame, top: int = 3) -> str:
    """One line: how many rows extrapolate and the most frequent reasons."""
    reasons = Counter(r for w in frame.loc[frame["extrapolated"], "why"] for r in w.split("; "))
    listed = "; ".join(f"{r} ({n} rows)" for r, n in reasons.most_common(top))
    more = f"; {len(reasons) - top} more reasons" if len(reasons) > top else ""
    return f"{int(frame['extrapolated'].sum())} of {len(frame)} predicted rows extrapolate: {listed}{more}"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise BundleError(f"{path.parent}: no {path.name}, not a complete model bundle")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{path}: not valid JSON ({err})") from None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", str(text))[:3])


def load(directory: str | os.PathLike) -> Bundle:
    """The :class:`Bundle` saved in ``directory``; a missing, corrupt or newer bundle raises :class:`BundleError`."""
    from .calibration import CALIBRATORS

    d = Path(directory)
    if not d.exists():
        raise BundleError(f"{d}: no such model bundle (a directory written by `nanoutils calibrate`)")
    if not d.is_dir():
        raise BundleError(f"{d}: is a file, not a model bundle directory (for a checkpoint use --checkpoint)")
    spec = _read_json(d / MODEL_JSON)
    if not isinstance(spec, dict) or not {"name", "format", "nanoutils_version", "members"} <= set(spec):
        raise BundleError(
            f"{d / MODEL_JSON}: not a bundle description (needs name, format, nanoutils_version, members)"
        )
    if (
        not isinstance(spec["format"], int)
        or spec["format"] > FORMAT_VERSION
        or _version_tuple(spec["nanoutils_version"]) > _version_tuple(__version__)
    ):
        raise BundleError(
            f"{d}: made by nanoutils {spec['nanoutils_version']} (bundle format {spec['format']}), "
            f"newer than this nanoutils {__version__} (format {FORMAT_VERSION}); upgrade nanoutils"
        )
    if spec["name"] not in CALIBRATORS:
        raise BundleError(f"{d / MODEL_JSON}: unknown model {spec['name']!r}; known: {', '.join(CALIBRATORS)}")
    if not isinstance(spec["members"], list) or not spec["members"]:
        raise BundleError(f"{d / MODEL_JSON}: lists no member files")
    fmt = CALIBRATORS[spec["name"]].member
    members = []
    for name in spec["members"]:
        path = d / str(name)
        if not path.is_file():
            raise BundleError(f"{path}: member file missing from the bundle")
        members.append(fmt.load(path))
    domain = _read_json(d / DOMAIN_JSON)
    return Bundle(
        spec["name"],
        CALIBRATORS[spec["name"]].kind,
        members,
        domain,
        _read_json(d / PROVENANCE_JSON),
        spec.get("fits", []),
        point_estimate=bool(spec.get("point_estimate", False)),
        residual_sd=_residual_sd_of(spec, d),
    )


def _residual_sd_of(spec: dict[str, Any], d: Path) -> float:
    value = spec.get("residual_sd", 0.0)
    if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise BundleError(f"{d / MODEL_JSON}: residual_sd must be a number ≥ 0, got {value!r}")
    return float(value)


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def provenance(
    sources: Sequence[str | os.PathLike], profile: str, command: str, seeds: Sequence[int]
) -> dict[str, Any]:
    """Where a bundle came from: data files and their SHA-256, package version, profile, seeds, command, UTC date."""
    return {
        "data": [{"path": str(p), "sha256": sha256(p)} for p in sources],
        "nanoutils_version": __version__,
        "profile": profile,
        "seeds": list(seeds),
        "command": command,
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def score_points(
    members: Sequence, meas: Measurements, point_estimate: bool = False, residual: float = 0.0
) -> pd.DataFrame:
    """Every measurement of ``meas`` with the members' prediction and spread: feed_id, study, ion (the
    measured quantity), Jv_um_s, R_meas, R_pred (mean; the first member's with ``point_estimate``), R_std_param
    (the members' spread), R_std (``hypot(R_std_param, residual)``: the predictive standard deviation with the
    residual scatter ``residual`` of :func:`residual_sd`), converged. Mechanistic members are evaluated as in
    eq. 11 (each feed's temperature, film layer for observed rejections), learned ones as in fine-tuning."""
    if hasattr(members[0], "parameters"):
        from .finetuning import score

        frames = [score(m, meas)[1] for m in members]
        base = frames[0].assign(Jv_um_s=frames[0]["Jv_m_s"] * 1e6, converged=True)
    else:
        from .fitting import predictions

        frames = [predictions(meas, m) for m in members]
        base = frames[0].assign(converged=np.all([f["converged"] for f in frames], axis=0))
    R = np.stack([f["R_pred"].to_numpy(float) for f in frames])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all members unconverged at a point: NaN
        spread = np.nanstd(R, axis=0)
        base = base.assign(
            R_pred=R[0] if point_estimate else np.nanmean(R, axis=0),
            R_std_param=spread,
            R_std=np.hypot(spread, residual),
        )
    return base[
        ["feed_id", "study", "ion", "Jv_um_s", "R_meas", "R_pred", "R_std_param", "R_std", "converged"]
    ].reset_index(drop=True)


def residual_sd(scored: pd.DataFrame, n_params: int = 0) -> float:
    """The residual scatter of a calibration: sqrt(Σ (R_pred − R_meas)² / (n − n_params)) over the n
    converged points of a :func:`score_points` frame (R as a fraction). It holds the model's misfit and the
    measurement noise, which the members' spread (parameter or seed uncertainty) does not; for a model with
    many weights fitted to few points it underestimates the out-of-sample error."""
    r = (scored["R_pred"] - scored["R_meas"]).to_numpy(float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return 0.0
    return float(np.sqrt((r @ r) / max(r.size - n_params, 1)))


def coverage(scored: pd.DataFrame, k: float = 2.0) -> float:
    """Fraction of measurements inside the prediction mean ± ``k`` std (:func:`score_points` frame)."""
    ok = scored["R_pred"].notna()
    inside = (scored["R_meas"] - scored["R_pred"]).abs() <= k * scored["R_std"]
    return float(inside[ok].mean())


def write_report(b: Bundle, directory: Path) -> None:
    """The fit report of ``b.scored``: points, per-feed and per-ion errors (CSV), parity and residual PNGs,
    ``summary.md``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import report
    from .plotting import parity_by_ion

    if b.scored is None:
        raise ValueError(f"bundle {b.name} has no scored points (a loaded bundle): nothing to report")
    directory.mkdir(parents=True, exist_ok=True)
    s = b.scored.assign(abs_err_pp=100 * (b.scored["R_pred"] - b.scored["R_meas"]).abs())
    s.to_csv(directory / "points.csv", index=False)
    tables = {
        key: s.groupby(key)
        .agg(points=("abs_err_pp", "size"), mae_pp=("abs_err_pp", "mean"), max_pp=("abs_err_pp", "max"))
        .reset_index()
        for key in ("feed_id", "ion")
    }
    tables["feed_id"].to_csv(directory / "errors_per_feed.csv", index=False)
    tables["ion"].to_csv(directory / "errors_per_ion.csv", index=False)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    parity_by_ion(ax, s.assign(split="real"))
    ax.legend(fontsize=7)
    fig.savefig(directory / "parity.png", dpi=120, bbox_inches="tight")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for ion, g in s.groupby("ion"):
        ax.errorbar(g["Jv_um_s"], 100 * (g["R_pred"] - g["R_meas"]), 200 * g["R_std"], fmt="o", ms=3, label=ion)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set(xlabel="flux (µm/s)", ylabel="R predicted − measured (pp), ± 2 std")
    ax.legend(fontsize=7)
    fig.savefig(directory / "residuals.png", dpi=120, bbox_inches="tight")
    plt.close("all")
    params = [pd.DataFrame(f["parameters"]) for f in b.info if "parameters" in f]
    notes = [f["note"] for f in b.info if f.get("note")]
    text = [
        f"# Calibration report: {b.name} ({b.kind}, {len(b.members)} members)",
        "",
        (
            f"Data: {', '.join(d['path'] for d in b.provenance['data']) or '(in memory)'}; profile "
            f"{b.provenance['profile']}; seeds {b.provenance['seeds']}; nanoutils {b.provenance['nanoutils_version']}."
        ),
        "",
        (
            f"In-sample error: {s['abs_err_pp'].mean():.2f} pp over {len(s)} points; "
            f"{100 * coverage(s):.0f} % of them inside prediction ± 2 R_std (R_std: spread of the members and "
            f"residual scatter {100 * b.residual_sd:.1f} pp in quadrature)."
        ),
        "",
        "## Error per feed (pp)",
        "",
        report.markdown(tables["feed_id"]),
        "",
        "## Error per ion (pp)",
        "",
        report.markdown(tables["ion"]),
        "",
    ]
    if params:
        text += ["## Fitted parameters (first fit)", "", report.markdown(params[0]), ""]
    text += [f"Note: {n}" for n in notes]
    text += ["", "Plots: `parity.png`, `residuals.png`. Domain of validity: `../domain.json`."]
    (directory / "summary.md").write_text("\n".join(text) + "\n")
