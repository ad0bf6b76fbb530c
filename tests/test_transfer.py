"""The real-data transfer benchmark on a synthetic multi-feed, multi-study CSV in the schema."""

from dataclasses import dataclass, replace

import matplotlib
import numpy as np
import pandas as pd
import pytest
from test_fitting import TRUE, synthetic_csv

from nanoutils import fitting, measurements, profiles, transfer

matplotlib.use("Agg")

# Two studies; the K2SO4 feed has two ions no other feed has, MgCl2 one, the NaCl feeds none.
STUDY_A = {"NaCl-5": "NaCl 5 mM", "MgCl2": "MgCl2 5 mM + NaCl 1 mM"}
STUDY_B = {"NaCl-20": "NaCl 20 mM", "K2SO4": "K2SO4 5 mM + NaCl 1 mM"}
FLUXES = (2.0, 10.0, 40.0)
ORACLE = fitting.Spec().model(TRUE)


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory):
    """A user's own file: two studies in one CSV, written from DSPM-DE at Z = TRUE."""
    tmp = tmp_path_factory.mktemp("user")
    a = pd.read_csv(synthetic_csv(tmp / "a.csv", feeds=STUDY_A, fluxes_um_s=FLUXES))
    b = pd.read_csv(synthetic_csv(tmp / "b.csv", feeds=STUDY_B, fluxes_um_s=FLUXES)).assign(study="other-lab")
    path = tmp / "mine.csv"
    pd.concat([a, b]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def meas(user_csv):
    return measurements.load_measurements(user_csv)


def oracle(train, seed):
    return ORACLE


def test_the_generating_model_transfers_with_zero_error_and_a_wrong_one_does_not(meas):
    wrong = replace(ORACLE, membrane=ORACLE.membrane.with_(X_d=-5.0))
    bench = transfer.benchmark(meas, {"oracle": oracle, "wrong": lambda train, seed: wrong}, seeds=(0, 1))
    assert set(bench.folds["fold"]) == set(meas.feed_keys) | {"in-sample"}
    assert len(bench.folds) == 2 * 2 * (len(meas.feed_keys) + 1)
    head = bench.headline()
    assert head.loc["oracle", ["ions seen (pp)", "all folds (pp)", "in-sample (pp)"]].max() < 1e-6
    assert head.loc["wrong", "all folds (pp)"] > 1.0
    assert head.loc["oracle", "folds"] == 4 and head.loc["oracle", "folds ions seen"] == 2
    assert head.loc["wrong", "seeds"] == 2 and head.loc["wrong", "NaN points"] == 0
    # every measurement of every held-out feed is scored once per model, seed and fold
    transfer_points = bench.points[(bench.points["split"] == "transfer") & (bench.points["model"] == "oracle")]
    assert len(transfer_points) == 2 * len(meas)
    per_q = bench.per_quantity()
    assert per_q.loc["wrong"].notna().any().all()
    assert set(bench.per_flux().columns) == {"oracle", "wrong"}


def test_folds_are_labelled_by_the_ions_their_training_feeds_covered(meas):
    labels = {key: transfer.coverage(meas, key, [k for k in meas.feed_keys if k != key])[0] for key in meas.feed_keys}
    assert labels == {
        "synth/NaCl-5": "ions seen",
        "other-lab/NaCl-20": "ions seen",
        "synth/MgCl2": "ion Mg2+ unseen",
        "other-lab/K2SO4": "ions K+, SO4-2 unseen",
    }
    bench = transfer.benchmark(meas, {"oracle": oracle}, in_sample=False)
    folds = bench.folds.set_index("fold")
    assert folds.loc["other-lab/K2SO4", "unseen"] == "K+, SO4-2"
    assert folds.loc["synth/NaCl-5", "ions"] == "ions seen"


def test_no_test_feed_row_ever_reaches_its_calibration(meas):
    seen = []

    def recording(train, seed):
        seen.append((set(train.feed_keys), set(train.table["feed_key"])))
        return ORACLE

    bench = transfer.benchmark(meas, {"rec": recording}, in_sample=False)
    assert len(seen) == len(meas.feed_keys)
    for (keys, rows), fold in zip(seen, bench.folds["fold"], strict=True):
        assert fold not in keys and fold not in rows
        assert keys == rows == set(meas.feed_keys) - {fold}
    with pytest.raises(transfer.LeakageError, match="synth/MgCl2"):
        transfer.check_no_leak(meas, ["synth/MgCl2"])


@dataclass(frozen=True)
class DeclinesIon:
    """A model that cannot predict one ion (as the SF model without that ion's friction factor)."""

    model: fitting.Model
    ion: str

    def solve(self, feeds, fluxes, **options):
        res = self.model.solve(feeds, fluxes, **options)
        if self.ion in res.species:
            res.permeate[..., res.species.index(self.ion)] = np.nan
        return res


def test_points_a_model_cannot_predict_are_counted_and_named(meas):
    bench = transfer.benchmark(meas, {"no-Mg": lambda train, seed: DeclinesIon(ORACLE, "Mg2+")}, in_sample=False)
    folds = bench.folds.set_index("fold")
    n_mg = int((meas.table["quantity"] == "Mg2+").sum())
    assert folds.loc["synth/MgCl2", "n_nan"] == n_mg and folds["n_nan"].sum() == n_mg
    assert folds.loc["synth/MgCl2", "nan_points"].count("synth/MgCl2 Mg2+ at") == n_mg
    assert folds.loc["synth/MgCl2", "error_pp"] < 1e-6  # the other ions are still scored
    assert bench.headline().loc["no-Mg", "NaN points"] == n_mg


def test_an_ensemble_is_scored_by_its_mean_with_interval_coverage(meas):
    spread = [replace(ORACLE, membrane=ORACLE.membrane.with_(X_d=x)) for x in (-25.0, -30.0, -35.0)]
    bench = transfer.benchmark(
        meas, {"ens": lambda train, seed: spread, "one": lambda train, seed: [ORACLE, ORACLE]}, in_sample=False
    )
    folds = bench.folds.set_index(["model", "fold"])
    assert (folds.loc["one", "mean_R_std_pp"] == 0).all() and (folds.loc["one", "interval_coverage"] == 1).all()
    assert (folds.loc["ens", "mean_R_std_pp"] > 0).all()
    pts = bench.points[bench.points["model"] == "ens"]
    single = transfer.predict_points(meas, spread[1])
    members = np.stack([transfer.predict_points(meas, m)["R_pred"] for m in spread])
    np.testing.assert_allclose(transfer.predict_points(meas, spread)["R_pred"], members.mean(0), rtol=1e-12)
    assert len(pts) == len(single)
    assert "95% interval coverage" in bench.headline().columns


def test_bad_inputs_and_the_fold_figure(meas):
    with pytest.raises(ValueError, match="at least 2 feeds"):
        transfer.benchmark(meas.subset(["synth/MgCl2"]), {"oracle": oracle})
    with pytest.raises(ValueError, match="empty"):
        transfer.predict_points(meas, [])
    with pytest.raises(ValueError, match="'lab/none'"):
        transfer.benchmark(meas, {"oracle": oracle}, held_out=["lab/none"])
    one = transfer.benchmark(meas, {"oracle": oracle}, held_out=["synth/MgCl2"], in_sample=False)
    assert list(one.folds["fold"]) == ["synth/MgCl2"]
    bench = transfer.benchmark(meas, {"oracle": oracle, "ens": lambda train, seed: [ORACLE, ORACLE]}, in_sample=False)
    fig = transfer.plot(bench, meas, n_points=5)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len(meas.feed_keys)
    assert all(len(ax.lines) > 0 for ax in visible)


def test_a_torch_model_is_scored_at_each_feeds_own_fluxes(meas):
    from nanoutils import models, prediction

    net = models.build("resnet", "smoke").double()
    bench = transfer.benchmark(meas, {"net": lambda train, seed: net}, in_sample=False)
    assert bench.folds["n_nan"].sum() == 0
    key = "synth/MgCl2"
    test = meas.subset([key])
    a = test.arrays(tuple(net.config.species))
    curve = prediction.quantity_curves(test, net, a.Jv[0])  # (1, M, Q) at this feed's fluxes
    pts = bench.points[bench.points["fold"] == key]
    expected = curve[0][np.nonzero(a.mask[0])]
    np.testing.assert_allclose(pts["R_pred"].to_numpy(), expected, rtol=1e-12)


def test_registry_rows_calibrate_as_the_cli_does_and_name_unknown_models(meas):
    from nanoutils import calibration, sdem

    with pytest.raises(calibration.CalibrationError, match="unknown model 'nope'"):
        transfer.registry_rows(["nope"])
    rows = transfer.registry_rows(["sdem"], profile="smoke")
    nacl = meas.subset([k for k in meas.feed_keys if "NaCl" in k])
    model = rows["sdem"](nacl, 0)
    assert isinstance(model, sdem.SDEMModel)  # the bundle's point estimate, not its posterior draws
    assert set(model.permeance) == {"Na+", "Cl-"}


def test_a_cached_mechanistic_fit_is_reused_only_for_the_same_model_data_profile_and_seed(meas, tmp_path, monkeypatch):
    from nanoutils import calibration

    calls = []
    real_calibrate = calibration.calibrate
    monkeypatch.setattr(calibration, "calibrate", lambda *a, **k: calls.append(a[0]) or real_calibrate(*a, **k))
    nacl = meas.subset([k for k in meas.feed_keys if "NaCl" in k])
    rows = transfer.registry_rows(["sdem"], profile="smoke", cache=tmp_path)
    first = rows["sdem"](nacl, 0)
    again = transfer.registry_rows(["sdem"], profile="smoke", cache=tmp_path)["sdem"](nacl, 0)
    assert calls == ["sdem"] and again == first  # read back, not refitted: the same permeances to the bit
    benches = [
        transfer.benchmark(nacl, transfer.registry_rows(["sdem"], profile="smoke", cache=tmp_path), in_sample=False)
        for _ in range(2)
    ]
    assert len(calls) == 3  # the two folds fitted once, then read back
    fit_s = benches[0].folds["calibrate_s"]
    assert (fit_s > 0).all() and benches[1].folds["calibrate_s"].tolist() == fit_s.tolist()  # their own fit time
    rows["sdem"](nacl, 1)
    rows["sdem"](meas.subset([k for k in meas.feed_keys if "NaCl-5" in k]), 0)
    transfer.registry_rows(["sdem"], profile="default", cache=tmp_path)["sdem"](nacl, 0)
    assert len(calls) == 5  # another seed and another profile fit; NaCl-5 alone was a fold's training set: read back
    assert len(list((tmp_path / "sdem").glob("*.json"))) == 5
    assert transfer.calibration_key("sdem", nacl, profiles.get("smoke", max_epochs=1), 0) == (
        key := transfer.calibration_key("sdem", nacl, profiles.get("smoke"), 0)
    )  # an epoch cap changes no mechanistic fit
    (tmp_path / "sdem" / f"{key}.json").write_text("{not json")
    with pytest.raises(calibration.CalibrationError, match=key):
        rows["sdem"](nacl, 0)


def test_a_model_without_a_parameter_for_an_ion_declines_its_feeds_whole(meas):
    from nanoutils import friction

    sf = friction.SFModel(
        {"Na+": 1.0, "Cl-": 2.0, "Mg2+": 3.0}, X=-20.0, water_fraction=0.5, thickness=1e-6, partition=0.8
    )
    assert sf.missing_ions(["Na+", "K+", "SO4-2"]) == ("K+", "SO4-2")
    assert transfer.declined_feeds(meas, sf) == ["other-lab/K2SO4"] == transfer.declined_feeds(meas, [sf, sf])
    points = transfer.predict_points(meas, sf)
    declined = points["feed_id"] == "other-lab/K2SO4"
    assert list(points["feed_id"]) == list(fitting.predictions(meas, ORACLE)["feed_id"])  # the data's row order
    assert points.loc[declined, "R_pred"].isna().all() and np.isfinite(points.loc[~declined, "R_pred"]).all()
    bench = transfer.benchmark(meas, {"sf": lambda train, seed: sf})
    head = bench.headline().loc["sf"]
    assert head["folds not predicted"] == 1 and head["NaN points"] == 2 * declined.sum()  # its fold and in-sample
    fig = transfer.plot(bench, meas, ["sf"], n_points=5)
    k2so4 = [ax for ax in fig.axes if ax.get_title().startswith("other-lab/K2SO4")][0]
    assert any("not predicted: sf" in t.get_text() for t in k2so4.texts)


def test_seeds_and_in_sample_calibrations_can_differ_per_row(meas):
    calls = []

    def recording(train, seed):
        calls.append((seed, len(train.feed_keys)))
        return ORACLE

    bench = transfer.benchmark(
        meas, {"a": recording, "b": oracle}, seeds={"a": (0, 1, 2), "b": (5,)}, in_sample={"a": (0,)}
    )
    assert sorted(calls) == sorted([(s, 3) for s in (0, 1, 2) for _ in range(4)] + [(0, 4)])
    head = bench.headline()
    assert (head.loc["a", "seeds"], head.loc["a", "in-sample seeds"]) == (3, 1)
    assert (head.loc["b", "seeds"], head.loc["b", "in-sample seeds"]) == (1, 0) and np.isnan(
        head.loc["b", "in-sample (pp)"]
    )
    assert (bench.folds["calibrate_s"] >= 0).all() and head.loc["a", "calibration (s)"] >= 0
    assert bench.best(["a", "b"]) in ("a", "b") and bench.best(["c"]) is None
    with pytest.raises(ValueError, match="'z'"):
        transfer.benchmark(meas, {"a": oracle}, seeds={"z": (0,)})
    with pytest.raises(ValueError, match="no seeds"):
        transfer.benchmark(meas, {"a": oracle}, seeds={"a": ()}, in_sample=False)
