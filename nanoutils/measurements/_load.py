"""Read, validate and write measurement CSVs (schema in ``_schema``, README in ``data/measured``)."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .. import ions
from . import _schema as S
from ._arrays import MeasuredArrays, build_arrays

MEASURED_DIR = Path(__file__).resolve().parents[2] / "data" / "measured"
#: σ of R (absolute, fraction) for rows that state neither σ_R nor σ of the permeate concentration.
DEFAULT_SIGMA_R = 0.02
#: A row stating both R and c_perm must satisfy |R − (1 − c_perm / c_feed)| ≤ this.
R_CONSISTENCY_ATOL = 1e-3


@dataclass(frozen=True)
class ReadReport:
    """What a load read: counts per study, feed and quantity, and how σ and values were filled."""

    files: tuple[str, ...]
    rows: int
    studies: dict[str, int]
    feeds: dict[str, int]
    flux_points: int
    quantities: dict[str, int]
    sigma_R_default: int
    sigma_R_from_c_perm: int
    R_from_c_perm: int
    c_perm_from_R: int
    extras: tuple[str, ...]
    default_sigma_R: float

    def __str__(self) -> str:
        return "\n".join(
            [
                f"read {self.rows} rows from {', '.join(self.files)}",
                f"  studies ({len(self.studies)}): " + ", ".join(f"{k} ({v} rows)" for k, v in self.studies.items()),
                f"  feeds ({len(self.feeds)}): " + ", ".join(f"{k} ({v} rows)" for k, v in self.feeds.items()),
                f"  flux points (feed, Jv, replicate): {self.flux_points}",
                f"  quantities ({len(self.quantities)}): " + ", ".join(f"{k} {v}" for k, v in self.quantities.items()),
                (
                    f"  sigma_R: stated {self.rows - self.sigma_R_default - self.sigma_R_from_c_perm}, "
                    f"from sigma(c_perm) {self.sigma_R_from_c_perm}, default {self.default_sigma_R:g} "
                    f"applied to {self.sigma_R_default} rows"
                ),
                f"  derived values: R from c_perm {self.R_from_c_perm} rows, c_perm from R {self.c_perm_from_R} rows",
                f"  extra columns: {', '.join(self.extras) or 'none'}",
            ]
        )


class Measurements:
    """Validated measurements: a tidy SI ``table`` (one row per CSV row), ``feeds`` (feed_key →
    :class:`ions.Feed`, mol/m³) and the ``report``. ``feed_key`` is ``"study/feed_id"``.

    Table columns: file, line, study, feed_id, feed_key, membrane, T_K, feed_mol_m3 (canonical
    composition string), feed_salts, quantity, quantity_kind, c_feed_q_mol_m3 (feed value of the
    quantity), Jv_m_s, sigma_Jv_m_s, replicate, rejection_type, R, sigma_R, c_perm_mol_m3,
    sigma_c_perm_mol_m3, the flags R_stated, c_perm_stated, sigma_R_stated, sigma_c_perm_stated,
    source, and the file's ``x_*`` columns.
    """

    def __init__(self, table: pd.DataFrame, feeds: dict[str, ions.Feed], default_sigma_R: float):
        self.table = table.reset_index(drop=True)
        self.feeds = {k: feeds[k] for k in sorted(feeds)}
        self.default_sigma_R = default_sigma_R
        self.report = _report(self.table, default_sigma_R)

    @property
    def feed_keys(self) -> tuple[str, ...]:
        """Feed keys ``"study/feed_id"``, sorted."""
        return tuple(self.feeds)

    @property
    def studies(self) -> tuple[str, ...]:
        """Study ids, sorted."""
        return tuple(sorted(self.table["study"].unique()))

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Measurements({len(self)} rows, {len(self.feeds)} feeds, studies {list(self.studies)})"

    def digest(self) -> str:
        """SHA-256 of the rows, every column but ``file`` (the path they were read from): the same data read from
        another copy or checkout have the same digest (calibration caches key on it)."""
        return hashlib.sha256(self.table.drop(columns="file").to_csv(index=False).encode()).hexdigest()

    def subset(self, feed_keys: Iterable[str]) -> Measurements:
        """The rows of the given feeds only (their report is recomputed)."""
        keys = set(feed_keys)
        unknown = keys - set(self.feeds)
        if unknown:
            raise KeyError(f"unknown feed keys {sorted(unknown)}; known: {list(self.feeds)}")
        rows = self.table[self.table["feed_key"].isin(keys)]
        return Measurements(rows, {k: self.feeds[k] for k in keys}, self.default_sigma_R)

    def arrays(self, species: Sequence[str] | None = None) -> MeasuredArrays:
        """Padded arrays for a model: see :class:`nanoutils.measurements.MeasuredArrays`."""
        return build_arrays(self.table, self.feeds, species)

    def to_csv(
        self, path: str | Path, *, flux_unit: str = "um_s", conc_unit: str = "mol_m3", temperature_unit: str = "C"
    ) -> Path:
        """Write the schema CSV with the values as stated (derived values and defaults are not
        written, so reading the file back gives the same measurements)."""
        return _write(self, Path(path), flux_unit, conc_unit, temperature_unit)


def load_measurements(
    paths: str | Path | Iterable[str | Path],
    *,
    default_sigma_R: float = DEFAULT_SIGMA_R,
    neutrality_rtol: float = ions.NEUTRALITY_RTOL,
) -> Measurements:
    """Read and validate one or more measurement CSVs into :class:`Measurements`.

    Raises a :class:`MeasurementError` (a ``ValueError``) naming file, line, column and value for
    any schema violation; nothing is dropped. Rows without σ get σ_R = ``default_sigma_R``
    (fraction); feeds must be electroneutral to ``neutrality_rtol`` (relative, see ``ions.Feed``).
    """
    if not (default_sigma_R > 0 and np.isfinite(default_sigma_R)):
        raise ValueError(f"default_sigma_R must be a positive number, got {default_sigma_R!r}")
    path_list = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not path_list:
        raise ValueError("no measurement files given")
    feeds: dict[str, ions.Feed] = {}
    table = pd.concat(
        [_parse_file(Path(p), default_sigma_R, neutrality_rtol, feeds) for p in path_list], ignore_index=True
    )
    _check_feed_consistency(table)
    _check_duplicates(table)
    return Measurements(table, feeds, default_sigma_R)


def load_dataset(name: str, **kwargs) -> Measurements:
    """Load a shipped data set by name, e.g. ``"nf270_fdl2021"`` (``data/measured/<name>.csv``)."""
    path = MEASURED_DIR / f"{name}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no data set {name!r}; available: {available_datasets()}")
    return load_measurements(path, **kwargs)


def available_datasets() -> list[str]:
    """Names of the data sets in ``data/measured/``."""
    return sorted(p.stem for p in MEASURED_DIR.glob("*.csv"))


# ---------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[str], list[int], list[list[str]]]:
    try:
        return _read_text_csv(path)
    except UnicodeDecodeError as err:
        raise S.MeasurementValueError(
            f"not a UTF-8 text CSV (byte {err.start}: {err.reason})", file=str(path)
        ) from None


def _read_text_csv(path: Path) -> tuple[list[str], list[int], list[list[str]]]:
    file = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"measurement file not found: {file}")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if not header:
            raise S.MissingColumnError("empty file (no header)", file=file, line=1)
        doubled = sorted({h for h in header if header.count(h) > 1})
        if doubled:
            raise S.ColumnNameError("column name repeated in the header", file=file, line=1, column=doubled[0])
        lines, rows = [], []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # a blank line holds no data
            if len(record) != len(header):
                raise S.MeasurementValueError(
                    f"{len(record)} fields, but the header has {len(header)}", file=file, line=reader.line_num
                )
            lines.append(reader.line_num)
            rows.append([cell.strip() for cell in record])
    if not rows:
        raise S.MeasurementValueError("no data rows", file=file, line=2)
    return header, lines, rows


def _parse_file(path: Path, default_sigma_R: float, rtol: float, feeds: dict[str, ions.Feed]) -> pd.DataFrame:
    file = str(path)
    header, lines, rows = _read_csv(path)
    hdr = S.resolve_header(header, file)
    raw = pd.DataFrame(rows, columns=header)

    def fail(kind: type[S.MeasurementError], i: int, field: str, msg: str) -> S.MeasurementError:
        column = hdr.fields[field][0]
        return kind(msg, file=file, line=lines[i], column=column, value=raw.at[i, column])

    def fail_at(i: int, field: str) -> Callable[[type[S.MeasurementError], str], S.MeasurementError]:
        return lambda kind, msg: fail(kind, i, field, msg)

    def text(field: str) -> list[str]:
        if field not in hdr.fields:
            return [""] * len(raw)
        values = raw[hdr.fields[field][0]].tolist()
        if S.PLAIN_FIELDS.get(field):
            for i, v in enumerate(values):
                if not v:
                    raise fail(S.MeasurementValueError, i, field, "required value is empty")
        return values

    def number(field: str, ok: Callable[[float], bool] | None = None, rule: str = "") -> np.ndarray:
        out = np.full(len(raw), np.nan)
        if field not in hdr.fields:
            return out
        to_si, required = hdr.to_si(field), S.UNIT_FIELDS[field][2]
        for i, v in enumerate(raw[hdr.fields[field][0]]):
            if not v:
                if required:
                    raise fail(S.MeasurementValueError, i, field, "required value is empty")
                continue
            try:
                x = float(v)
            except ValueError:
                raise fail(S.MeasurementValueError, i, field, "not a number") from None
            if not np.isfinite(x):
                raise fail(S.MeasurementValueError, i, field, "not a finite number (NaN or inf)")
            out[i] = float(to_si(x))
            if ok is not None and not ok(out[i]):
                raise fail(S.MeasurementValueError, i, field, rule)
        return out

    study, feed_id = text("study"), text("feed_id")
    for i, s in enumerate(study):
        if "/" in s:
            raise fail(S.MeasurementValueError, i, "study", "study ids may not contain '/'")
    rtype = text("rejection_type")
    for i, t in enumerate(rtype):
        if t not in S.REJECTION_TYPES:
            raise fail(S.MeasurementValueError, i, "rejection_type", f"must be one of {', '.join(S.REJECTION_TYPES)}")
    T = number("T", lambda x: x > 0, "temperature must be above 0 K")
    Jv = number("Jv", lambda x: x > 0, "permeate flux must be > 0")
    sJv = number("sigma_Jv", lambda x: x > 0, "a standard deviation must be > 0 (leave it empty if unknown)")
    R_st = number("R", lambda x: x <= 1, "rejection must be <= 1 (R > 1 means a negative permeate concentration)")
    sR_st = number("sigma_R", lambda x: x > 0, "a standard deviation must be > 0 (leave it empty if unknown)")
    c_st = number("c_perm", lambda x: x >= 0, "concentration must be >= 0")
    sc_st = number("sigma_c_perm", lambda x: x > 0, "a standard deviation must be > 0 (leave it empty if unknown)")

    feed_unit = hdr.to_si("feed")
    parsed: dict[str, ions.Feed] = {}
    canon, q_names, q_kind, c_fq = [], [], [], np.empty(len(raw))
    salts = text("feed_salts")
    for i, (cell, qname) in enumerate(zip(text("feed"), text("quantity"), strict=True)):
        if cell not in parsed:
            parsed[cell] = _feed(cell, feed_unit, rtol, fail_at(i, "feed"))
        feed = parsed[cell]
        if salts[i]:
            _check_salts(salts[i], feed, partial(fail_at(i, "feed_salts"), S.InconsistentRowsError))
        try:
            q = S.quantity(qname)
        except ions.CompositionError as err:
            raise fail(
                S.UnknownQuantityError, i, "quantity", f"not an ion of the table nor a salt of its ions ({err})"
            ) from None
        missing = [ion for ion in q.weights if feed.get(ion, 0.0) <= 0]
        if missing:
            raise fail(
                S.MeasurementValueError,
                i,
                "quantity",
                f"{', '.join(missing)} absent from (or zero in) this row's feed {feed!r}",
            )
        canon.append(S.format_feed(feed))
        q_names.append(q.name)
        q_kind.append(q.kind)
        c_fq[i] = sum(w * feed[ion] for ion, w in q.weights.items())
        feeds.setdefault(f"{study[i]}/{feed_id[i]}", feed)

    has_R, has_c = ~np.isnan(R_st), ~np.isnan(c_st)
    for bad in np.flatnonzero(~has_R & ~has_c):
        raise fail(
            S.MeasurementValueError,
            int(bad),
            "R" if "R" in hdr.fields else "c_perm",
            "give the rejection or the permeate concentration",
        )
    R_from_c = 1.0 - c_st / c_fq
    for bad in np.flatnonzero(has_R & has_c & (np.abs(R_st - R_from_c) > R_CONSISTENCY_ATOL)):
        raise fail(
            S.InconsistentRowsError,
            int(bad),
            "c_perm",
            f"gives R = {R_from_c[bad]:.6g} but the row states R = {R_st[bad]:.6g} (tolerance {R_CONSISTENCY_ATOL:g})",
        )
    R = np.where(has_R, R_st, R_from_c)
    has_sR, has_sc = ~np.isnan(sR_st), ~np.isnan(sc_st)
    sigma_R = np.where(has_sR, sR_st, np.where(has_sc, sc_st / c_fq, default_sigma_R))

    table = pd.DataFrame(
        {
            "file": file,
            "line": lines,
            "study": study,
            "feed_id": feed_id,
            "feed_key": [f"{s}/{f}" for s, f in zip(study, feed_id, strict=True)],
            "membrane": text("membrane"),
            "T_K": T,
            "feed_mol_m3": canon,
            "feed_salts": salts,
            "quantity": q_names,
            "quantity_kind": q_kind,
            "c_feed_q_mol_m3": c_fq,
            "Jv_m_s": Jv,
            "sigma_Jv_m_s": sJv,
            "replicate": text("replicate"),
            "rejection_type": rtype,
            "R": R,
            "sigma_R": sigma_R,
            "c_perm_mol_m3": np.where(has_c, c_st, (1.0 - R) * c_fq),
            "sigma_c_perm_mol_m3": np.where(has_sc, sc_st, sigma_R * c_fq),
            "R_stated": has_R,
            "c_perm_stated": has_c,
            "sigma_R_stated": has_sR,
            "sigma_c_perm_stated": has_sc,
            "source": text("source"),
        }
    )
    for col in hdr.extras:
        table[col] = raw[col].to_numpy()
    return table


def _feed(
    cell: str,
    to_si: Callable[[ArrayLike], np.ndarray],
    rtol: float,
    fail: Callable[[type[S.MeasurementError], str], S.MeasurementError],
) -> ions.Feed:
    try:
        composition = S.parse_feed(cell, to_si)
    except ions.UnknownIonError as err:
        raise fail(S.UnknownQuantityError, str(err)) from None
    except ValueError as err:
        raise fail(S.MeasurementValueError, str(err)) from None
    try:
        return ions.Feed(composition, rtol=rtol)
    except ions.ElectroneutralityError as err:
        raise fail(S.NonNeutralFeedError, str(err)) from None
    except ions.CompositionError as err:
        raise fail(S.MeasurementValueError, str(err)) from None


def _check_salts(text: str, feed: ions.Feed, fail: Callable[[str], S.MeasurementError]) -> None:
    try:
        recipe = ions.Feed.from_salts(text, rtol=np.inf)
    except ValueError as err:
        raise fail(f"cannot read the salt recipe: {err}") from None
    names = sorted(set(recipe) | set(feed))
    if not np.allclose(recipe.vector(names), feed.vector(names), rtol=1e-9, atol=0):
        raise fail(f"recipe gives {S.format_feed(recipe)} mol/m³, the feed column {S.format_feed(feed)} mol/m³")


def _check_feed_consistency(table: pd.DataFrame) -> None:
    for key, group in table.groupby("feed_key", sort=False):
        first = group.iloc[0]
        for col in ("feed_mol_m3", "membrane", "T_K", "rejection_type"):
            bad = group[group[col] != first[col]]
            if len(bad):
                row = bad.iloc[0]
                raise S.InconsistentRowsError(
                    f"feed {key!r} has {col} = {first[col]!r} at line {first['line']} of {first['file']}; "
                    "every row of a feed must agree (give a different feed_id for a different feed)",
                    file=row["file"],
                    line=row["line"],
                    column=col,
                    value=row[col],
                )


def _check_duplicates(table: pd.DataFrame) -> None:
    key = ["study", "feed_id", "quantity", "Jv_m_s", "replicate"]
    dup = table[table.duplicated(key, keep=False)]
    if len(dup):
        first = dup.iloc[0]
        twin = dup[(dup[key] == first[key]).all(axis=1)].iloc[1]
        raise S.DuplicateRowError(
            f"duplicate of line {first['line']} of {first['file']} (same study, feed_id, quantity, Jv and "
            "replicate); number replicates in a 'replicate' column",
            file=twin["file"],
            line=twin["line"],
            column="quantity",
            value=twin["quantity"],
        )


def _report(table: pd.DataFrame, default_sigma_R: float) -> ReadReport:
    from_c = ~table["sigma_R_stated"] & table["sigma_c_perm_stated"]

    def counts(column: str) -> dict[str, int]:
        return {str(k): int(n) for k, n in table.groupby(column).size().items()}

    return ReadReport(
        files=tuple(dict.fromkeys(table["file"])),
        rows=len(table),
        studies=counts("study"),
        feeds=counts("feed_key"),
        flux_points=len(table.drop_duplicates(["feed_key", "Jv_m_s", "replicate"])),
        quantities=counts("quantity"),
        sigma_R_default=int((~table["sigma_R_stated"] & ~table["sigma_c_perm_stated"]).sum()),
        sigma_R_from_c_perm=int(from_c.sum()),
        R_from_c_perm=int((~table["R_stated"]).sum()),
        c_perm_from_R=int((~table["c_perm_stated"]).sum()),
        extras=tuple(c for c in table.columns if c.startswith(S.EXTRA_PREFIX)),
        default_sigma_R=default_sigma_R,
    )


def _from_si(field: str, unit: str, values: ArrayLike) -> np.ndarray:
    to_si = S.UNIT_FIELDS[field][1][unit]  # all converters are affine: y = a x + b
    b = float(to_si(0.0))
    return (np.asarray(values, dtype=float) - b) / (float(to_si(1.0)) - b)


def _write(meas: Measurements, path: Path, flux_unit: str, conc_unit: str, temperature_unit: str) -> Path:
    t = meas.table

    def fmt(values: ArrayLike, stated=None) -> list[str]:
        values = np.asarray(values, dtype=float)
        keep = np.ones(len(values), bool) if stated is None else np.asarray(stated, bool)
        return [f"{v:.12g}" if k and np.isfinite(v) else "" for v, k in zip(values, keep, strict=True)]

    scale = float(S.UNIT_FIELDS["feed"][1][conc_unit](1.0))
    out: dict[str, Any] = {
        "study": t["study"],
        "feed_id": t["feed_id"],
        "membrane": t["membrane"],
        f"T_{temperature_unit}": fmt(_from_si("T", temperature_unit, t["T_K"])),
        f"feed_{conc_unit}": [S.format_feed(meas.feeds[k], scale) for k in t["feed_key"]],
        "feed_salts": t["feed_salts"],
        "quantity": t["quantity"],
        f"Jv_{flux_unit}": fmt(_from_si("Jv", flux_unit, t["Jv_m_s"])),
        f"sigma_Jv_{flux_unit}": fmt(_from_si("Jv", flux_unit, t["sigma_Jv_m_s"])),
        "replicate": t["replicate"],
        "R_frac": fmt(t["R"], t["R_stated"]),
        "sigma_R_frac": fmt(t["sigma_R"], t["sigma_R_stated"]),
        f"c_perm_{conc_unit}": fmt(t["c_perm_mol_m3"] / scale, t["c_perm_stated"]),
        f"sigma_c_perm_{conc_unit}": fmt(t["sigma_c_perm_mol_m3"] / scale, t["sigma_c_perm_stated"]),
        "rejection_type": t["rejection_type"],
        "source": t["source"],
    }
    frame = pd.DataFrame({k: list(v) for k, v in out.items()})
    optional = [
        "feed_salts",
        "replicate",
        f"sigma_Jv_{flux_unit}",
        "R_frac",
        "sigma_R_frac",
        f"c_perm_{conc_unit}",
        f"sigma_c_perm_{conc_unit}",
    ]
    frame = frame.drop(columns=[c for c in optional if (frame[c] == "").all()])
    for col in meas.report.extras:
        frame[col] = t[col].to_numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path
