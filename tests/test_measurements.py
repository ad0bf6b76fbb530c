"""The measured-data layer: schema validation, round trip, salt mapping, arrays, splits, FdL 2021 data."""

import csv
import importlib.util

import numpy as np
import pandas as pd
import pytest

from nanoutils import ions, measurements

HEADER = [
    "study",
    "feed_id",
    "membrane",
    "T_C",
    "feed_mol_m3",
    "rejection_type",
    "quantity",
    "Jv_um_s",
    "R_frac",
    "sigma_R_frac",
    "c_perm_mol_m3",
    "source",
]
NACL = "Na+=10; Cl-=10"
MIX = "Na+=20.2; NH4+=0.2; Cl-=0.2; NO3-=0.2; SO4-2=10"
MIX_DOUBLE = "Na+=40.4; NH4+=0.4; Cl-=0.4; NO3-=0.4; SO4-2=20"
GOOD = [  # line 2 … 7
    ["s1", "A", "NF270", "20", NACL, "intrinsic", "NaCl", "5", "0.40", "0.01", "", "test"],
    ["s1", "A", "NF270", "20", NACL, "intrinsic", "Na+", "5", "0.41", "", "", "test"],
    ["s1", "A", "NF270", "20", NACL, "intrinsic", "Cl-", "10", "", "", "4.5", "test"],
    ["s1", "B", "NF270", "20", MIX, "intrinsic", "Na2SO4", "5", "0.98", "0.02", "", "test"],
    ["s1", "B", "NF270", "20", MIX, "intrinsic", "NO3-", "5", "-0.5", "", "", "test"],
    ["s1", "B", "NF270", "20", MIX, "intrinsic", "NO3-", "12", "0.1", "0.05", "0.18", "test"],
]


def write(path, rows, header=HEADER):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def edit(row_index, column, value):
    rows = [list(r) for r in GOOD]
    rows[row_index][HEADER.index(column)] = value
    return rows


def test_small_file_loads_with_sigma_rule_and_derived_values(tmp_path):
    meas = measurements.load_measurements(write(tmp_path / "ok.csv", GOOD))
    t = meas.table
    assert len(meas) == 6 and meas.feed_keys == ("s1/A", "s1/B")
    assert list(t["line"]) == [2, 3, 4, 5, 6, 7]
    assert np.allclose(t["Jv_m_s"], [5e-6, 5e-6, 10e-6, 5e-6, 5e-6, 12e-6]) and np.allclose(t["T_K"], 293.15)
    # σ_R: stated where given, else the default 0.02; σ of c_perm follows as σ_R · c_feed.
    assert np.allclose(t["sigma_R"], [0.01, 0.02, 0.02, 0.02, 0.02, 0.05])
    assert meas.report.sigma_R_default == 3 and meas.report.R_from_c_perm == 1 and meas.report.c_perm_from_R == 4
    assert np.allclose(t["sigma_c_perm_mol_m3"], t["sigma_R"] * t["c_feed_q_mol_m3"])
    # R from c_perm (Cl-: 1 − 4.5/10) and c_perm from R (Na+: 0.59 · 10).
    assert t.at[2, "R"] == pytest.approx(0.55) and t.at[1, "c_perm_mol_m3"] == pytest.approx(5.9)
    assert t.at[3, "c_feed_q_mol_m3"] == pytest.approx(0.25 * 20.2 + 0.5 * 10)
    assert "default 0.02 applied to 3 rows" in str(meas.report)


def test_sigma_of_permeate_concentration_sets_sigma_R(tmp_path):
    header = HEADER[:-1] + ["sigma_c_perm_mM", "source"]
    rows = [GOOD[2][:-1] + ["0.3", "test"], GOOD[1][:-1] + ["", "test"]]
    t = measurements.load_measurements(write(tmp_path / "sc.csv", rows, header)).table
    assert t["sigma_R"].tolist() == pytest.approx([0.3 / 10, 0.02])
    assert t["sigma_c_perm_mol_m3"].tolist() == pytest.approx([0.3, 0.02 * 10])
    assert t["sigma_c_perm_stated"].tolist() == [True, False]


def _case(name, tmp_path):
    rows, header = [list(r) for r in GOOD], list(HEADER)
    if name == "missing column":
        i = header.index("membrane")
        return [r[:i] + r[i + 1 :] for r in rows], header[:i] + header[i + 1 :]
    if name == "bad unit header":
        return rows, ["Jv_gfd" if h == "Jv_um_s" else h for h in header]
    if name == "ion zero in feed":
        rows[1][HEADER.index("feed_mol_m3")], rows[1][HEADER.index("quantity")] = "Na+=10; Cl-=10; NO3-=0", "NO3-"
        return rows, header
    if name == "extra column without x_":
        return [r + ["0.5"] for r in rows], header + ["R_authors_fit"]
    return {
        "unknown ion": (edit(4, "quantity", "Xy-"), header),
        "unknown feed ion": (edit(1, "feed_mol_m3", "Na+=10; Qq-=10"), header),
        "negative concentration": (edit(2, "c_perm_mol_m3", "-4.5"), header),
        "negative feed concentration": (edit(0, "feed_mol_m3", "Na+=-10; Cl-=-10"), header),
        "NaN": (edit(3, "Jv_um_s", "nan"), header),
        "empty required": (edit(5, "study", ""), header),
        "non-neutral feed": (edit(1, "feed_mol_m3", "Na+=10; Cl-=9"), header),
        "duplicated row": ([*rows, rows[4]], header),
        "ion absent from feed": (edit(0, "quantity", "SO4-2"), header),
        "R above 1": (edit(4, "R_frac", "1.2"), header),
        "zero sigma": (edit(4, "sigma_R_frac", "0"), header),
        "R and c_perm disagree": (edit(5, "c_perm_mol_m3", "0.1"), header),
        "feed differs within feed_id": (edit(4, "feed_mol_m3", MIX_DOUBLE), header),
        "bad rejection type": (edit(2, "rejection_type", "bulk"), header),
    }[name]


BAD = [  # case, error type, line, column, value named in the message
    ("missing column", measurements.MissingColumnError, 1, "membrane", None),
    ("bad unit header", measurements.ColumnNameError, 1, "Jv_gfd", None),
    ("extra column without x_", measurements.ColumnNameError, 1, "R_authors_fit", None),
    ("unknown ion", measurements.UnknownQuantityError, 6, "quantity", "Xy-"),
    ("unknown feed ion", measurements.UnknownQuantityError, 3, "feed_mol_m3", "Na+=10; Qq-=10"),
    ("negative concentration", measurements.MeasurementValueError, 4, "c_perm_mol_m3", "-4.5"),
    ("negative feed concentration", measurements.MeasurementValueError, 2, "feed_mol_m3", "Na+=-10; Cl-=-10"),
    ("NaN", measurements.MeasurementValueError, 5, "Jv_um_s", "nan"),
    ("empty required", measurements.MeasurementValueError, 7, "study", ""),
    ("non-neutral feed", measurements.NonNeutralFeedError, 3, "feed_mol_m3", "Na+=10; Cl-=9"),
    ("duplicated row", measurements.DuplicateRowError, 8, "quantity", "NO3-"),
    ("ion absent from feed", measurements.MeasurementValueError, 2, "quantity", "SO4-2"),
    ("ion zero in feed", measurements.MeasurementValueError, 3, "quantity", "NO3-"),
    ("R above 1", measurements.MeasurementValueError, 6, "R_frac", "1.2"),
    ("zero sigma", measurements.MeasurementValueError, 6, "sigma_R_frac", "0"),
    ("R and c_perm disagree", measurements.InconsistentRowsError, 7, "c_perm_mol_m3", "0.1"),
    ("feed differs within feed_id", measurements.InconsistentRowsError, 6, "feed_mol_m3", MIX_DOUBLE),
    ("bad rejection type", measurements.MeasurementValueError, 4, "rejection_type", "bulk"),
]


@pytest.mark.parametrize("case, error, line, column, value", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_file_line_column_value(tmp_path, case, error, line, column, value):
    rows, header = _case(case, tmp_path)
    path = write(tmp_path / "bad.csv", rows, header)
    with pytest.raises(error) as info:
        measurements.load_measurements(path)
    err, msg = info.value, str(info.value)
    assert isinstance(err, ValueError)
    assert str(path) in msg and f"line {line}" in msg and repr(column) in msg
    assert (err.file, err.line, err.column) == (str(path), line, column)
    if value is not None:
        assert repr(value) in msg
    if case == "non-neutral feed":
        assert isinstance(err, ions.ElectroneutralityError) and "not electroneutral" in msg
    if case == "duplicated row":
        assert "duplicate of line 6" in msg


def test_duplicates_across_files_are_caught(tmp_path):
    a = write(tmp_path / "a.csv", GOOD)
    b = write(tmp_path / "b.csv", GOOD[:1])
    with pytest.raises(measurements.DuplicateRowError, match=r"b\.csv, line 2.*duplicate of line 2 of .*a\.csv"):
        measurements.load_measurements([a, b])


def test_readme_example_loads(tmp_path):
    text = (measurements.MEASURED_DIR / "README.md").read_text(encoding="utf-8")
    block = text.split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.csv").write_text(block, encoding="utf-8")
    meas = measurements.load_measurements(tmp_path / "example.csv")
    assert len(meas) == 3 and meas.report.sigma_R_default == 2
    assert meas.table["R"].tolist() == pytest.approx([0.40, 0.55, -0.5])


def _comparable(meas):
    return meas.table.drop(columns=["file", "line"])


def test_round_trip_small_file_in_other_units(tmp_path):
    rows = [r[:-1] + ["1", "test"] for r in GOOD] + [GOOD[5][:-1] + ["2", "test"]]
    rows[-1][HEADER.index("R_frac")] = "0.12"
    rows[-1][HEADER.index("c_perm_mol_m3")] = ""
    first = measurements.load_measurements(write(tmp_path / "in.csv", rows, HEADER[:-1] + ["replicate", "source"]))
    out = first.to_csv(tmp_path / "out.csv", flux_unit="LMH", conc_unit="mM", temperature_unit="K")
    again = measurements.load_measurements(out)
    assert "Jv_LMH" in pd.read_csv(out).columns
    pd.testing.assert_frame_equal(_comparable(first), _comparable(again), check_exact=False, rtol=1e-10)
    assert again.report.sigma_R_default == first.report.sigma_R_default == 3


def test_round_trip_fdl_file(tmp_path):
    first = measurements.load_dataset("nf270_fdl2021")
    again = measurements.load_measurements(first.to_csv(tmp_path / "fdl.csv"))
    pd.testing.assert_frame_equal(_comparable(first), _comparable(again), check_exact=False, rtol=1e-12)


def test_salt_quantity_is_equivalent_weighted_rejection():
    q = measurements.quantity("Na2(SO4)")
    assert (q.name, q.kind) == ("Na2SO4", "salt") and q.weights == {"Na+": 0.25, "SO4-2": 0.5}
    assert measurements.quantity("(NH4)2SO4").name == "(NH4)2SO4" and measurements.quantity("no3").name == "NO3-"
    # In a feed of the salt alone, w·c is the salt concentration.
    feed = ions.Feed.from_salts("MgCl2 7 mM")
    assert sum(w * feed[i] for i, w in measurements.quantity("MgCl2").weights.items()) == pytest.approx(7.0)


def test_model_rejection_maps_salts_and_ions(tmp_path):
    arr = measurements.load_measurements(write(tmp_path / "ok.csv", GOOD)).arrays()
    rng = np.random.default_rng(3)
    c_perm = arr.c_feed[:, None, :] * rng.uniform(0.0, 2.0, (*arr.Jv.shape, len(arr.species)))
    R = arr.model_rejection(c_perm)
    with np.errstate(invalid="ignore", divide="ignore"):  # ions absent from a feed give NaN
        R_ion = 1 - c_perm / arr.c_feed[:, None, :]
    z = np.abs(ions.charges(arr.species))
    for qi, qname in enumerate(arr.quantities):
        ion_idx = [arr.species.index(i) for i in measurements.quantity(qname).weights]
        # equivalent-fraction-weighted mean of the salt's (or the single ion's) rejections
        eq = (z * arr.c_feed)[:, ion_idx]  # an ion absent from a feed has weight 0
        with np.errstate(invalid="ignore"):  # a quantity with none of its ions in a feed is NaN
            expected = (np.nan_to_num(R_ion[:, :, ion_idx]) * eq[:, None, :]).sum(-1) / eq.sum(-1)[:, None]
        assert np.allclose(R[:, :, qi], expected, equal_nan=True) and np.isfinite(R[1, :, qi]).all()
    assert arr.normalized_residuals(arr.R).tolist() == [0.0] * 6


def test_arrays_layout_and_row_order_invariance(tmp_path):
    meas = measurements.load_measurements(write(tmp_path / "ok.csv", GOOD))
    arr = meas.arrays()
    assert arr.mask.sum() == len(meas) and arr.Jv.shape == (2, 2) and arr.flux_mask.tolist() == [[True, True]] * 2
    assert np.all(np.diff(arr.Jv, axis=1) >= 0) and arr.intrinsic.all()
    n, m, q = np.nonzero(arr.mask)
    for col, grid in [("R", arr.R), ("sigma_R", arr.sigma_R), ("c_perm_mol_m3", arr.c_perm)]:
        assert np.array_equal(meas.table[col].to_numpy()[arr.row[n, m, q]], grid[n, m, q])
    assert np.isnan(arr.R[~arr.mask]).all() and (arr.row[~arr.mask] == -1).all()
    shuffled = measurements.load_measurements(write(tmp_path / "shuffled.csv", GOOD[::-1])).arrays()
    for name in ("Jv", "R", "sigma_R", "c_perm", "mask", "c_feed", "weights"):
        assert np.array_equal(getattr(arr, name), getattr(shuffled, name), equal_nan=True), name


def test_arrays_accept_a_model_species_order(tmp_path):
    arr = measurements.load_measurements(write(tmp_path / "ok.csv", GOOD)).arrays(species=ions.species())
    assert arr.species == ions.species() and arr.weights.shape == (len(arr.quantities), len(ions.species()))
    assert np.allclose(arr.q_feed[1, arr.quantities.index("Na2SO4")], 10.05)


def many_feeds(tmp_path, n_feeds=10, studies=("s1", "s2")):
    rows = []
    for s in studies:
        for f in range(n_feeds):
            for jv in ("3", "8", "20"):
                for q in ("Na+", "Cl-"):
                    rows.append(
                        [
                            s,
                            f"F{f}",
                            "NF270",
                            "25",
                            f"Na+={f + 1}; Cl-={f + 1}",
                            "observed",
                            q,
                            jv,
                            "0.3",
                            "",
                            "",
                            "test",
                        ]
                    )
    return measurements.load_measurements(write(tmp_path / "many.csv", rows))


def test_split_by_feed_never_shares_a_feed_and_is_reproducible(tmp_path):
    meas = many_feeds(tmp_path)
    train, test = measurements.split_by_feed(meas, 0.25, seed=7)
    assert not set(train.feed_keys) & set(test.feed_keys)
    assert set(train.feed_keys) | set(test.feed_keys) == set(meas.feed_keys)
    assert len(test.feed_keys) == 5 and len(train) + len(test) == len(meas)  # round(0.25 · 20 feeds)
    again = measurements.split_by_feed(meas, 0.25, seed=7)[1]
    assert again.feed_keys == test.feed_keys
    others = {measurements.split_by_feed(meas, 0.25, seed=s)[1].feed_keys for s in range(5)}
    assert len(others) > 1
    for part in (train, test):  # every flux point of a feed stays with its feed
        assert (part.table.groupby("feed_key").size() == 6).all()


def test_folds_and_leave_one_study_out(tmp_path):
    meas = many_feeds(tmp_path)
    folds = measurements.group_folds(meas, 3, seed=1)
    tests = [set(te.feed_keys) for _, _, te in folds]
    assert sorted(k for t in tests for k in t) == sorted(meas.feed_keys)
    for _, tr, te in folds:
        assert not set(tr.feed_keys) & set(te.feed_keys)
    loso = measurements.leave_one_study_out(meas)
    assert [name for name, _, _ in loso] == ["s1", "s2"]
    for name, tr, te in loso:
        assert te.studies == (name,) and name not in tr.studies
    with pytest.raises(ValueError, match="at least 2 groups"):
        measurements.leave_one_study_out(meas.subset([k for k in meas.feed_keys if k.startswith("s1/")]))


def test_group_column_must_hold_whole_feeds(tmp_path):
    rows = [r + [r[HEADER.index("quantity")]] for r in GOOD]  # x_group varies within feed A
    meas = measurements.load_measurements(write(tmp_path / "g.csv", rows, HEADER + ["x_group"]))
    with pytest.raises(ValueError, match="several values of 'x_group'"):
        measurements.split_by_feed(meas, by="x_group")


# --- the real NF270 data of Fernández de Labastida & Yaroshchuk (2021) ---------------------

FDL_FEEDS = {
    "fdl2021/NaCl-10mM": {"Na+": 10.2, "NH4+": 0.2, "Cl-": 10.2, "NO3-": 0.2},
    "fdl2021/MgCl2-10mM": {"Na+": 0.2, "NH4+": 0.2, "Mg2+": 10.0, "Cl-": 20.2, "NO3-": 0.2},
    "fdl2021/Na2SO4-10mM": {"Na+": 20.2, "NH4+": 0.2, "Cl-": 0.2, "NO3-": 0.2, "SO4-2": 10.0},
}


def test_fdl2021_loads_cleanly():
    meas = measurements.load_dataset("nf270_fdl2021")
    rep = meas.report
    assert rep.rows == 75 and rep.studies == {"fdl2021": 75} and rep.sigma_R_default == 0
    assert rep.feeds == {"fdl2021/MgCl2-10mM": 26, "fdl2021/Na2SO4-10mM": 28, "fdl2021/NaCl-10mM": 21}
    assert rep.quantities == {"Cl-": 7, "MgCl2": 7, "NH4+": 21, "NO3-": 21, "Na+": 5, "Na2SO4": 7, "NaCl": 7}
    for key, comp in FDL_FEEDS.items():
        assert dict(meas.feeds[key]) == pytest.approx(comp)
    t = meas.table
    assert (t["rejection_type"] == "intrinsic").all() and np.allclose(t["T_K"], 293.15)
    assert np.allclose(t["sigma_R"], np.maximum(t["x_dR_read"].astype(float), 0.02))
    assert t["R"].min() == pytest.approx(-1.10261) and t["Jv_m_s"].max() == pytest.approx(55.867e-6)
    assert set(rep.extras) == {"x_R_authors_SDEM_fit", "x_dR_read", "x_quality"}
    train, test = measurements.split_by_feed(meas, 0.2, seed=0)  # one whole salt series held out
    assert len(test.feed_keys) == 1 and len(train.feed_keys) == 2


def test_fdl2021_converter_reproduces_committed_csv(tmp_path):
    script = measurements.MEASURED_DIR / "convert_fdl2021.py"
    spec = importlib.util.spec_from_file_location("convert_fdl2021", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.convert(module.SOURCE, tmp_path / "fdl.csv")
    assert out.read_bytes() == (measurements.MEASURED_DIR / "nf270_fdl2021.csv").read_bytes()


def test_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "blank.csv"
    write(path, GOOD)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + [""] + lines[3:-1] + [lines[-1].replace(",12,", ",-12,")]) + "\n")
    with pytest.raises(measurements.MeasurementValueError, match=r"line 8, column 'Jv_um_s', value '-12'"):
        measurements.load_measurements(path)
    assert measurements.load_measurements(write(tmp_path / "ok.csv", GOOD)).table["line"].max() == 7


def test_the_digest_follows_the_rows_not_where_they_were_read_from(tmp_path):
    src = measurements.MEASURED_DIR / "nf270_fdl2021.csv"
    (tmp_path / "a").mkdir()
    copy = tmp_path / "a" / src.name
    copy.write_text(src.read_text())
    here, there = measurements.load_measurements(src), measurements.load_measurements(copy)
    assert here.table["file"].iloc[0] != there.table["file"].iloc[0]
    assert here.digest() == there.digest()
    text = src.read_text()
    assert text.count(",0.43114,") == 1  # one rejection of the NaCl feed
    changed = tmp_path / "changed.csv"
    changed.write_text(text.replace(",0.43114,", ",0.44114,"))
    assert measurements.load_measurements(changed).digest() != here.digest()
    assert here.subset(here.feed_keys[:1]).digest() != here.digest()
