"""Calibration by name, model bundles, predictions with spread and validity flags."""

import dataclasses
import json

import numpy as np
import pytest

import nanoutils
from nanoutils import bundle, calibration, dspmde, fitting, friction, ions, measurements, predict, sdem
from nanoutils.profiles import Profile

FEEDS = [ions.Feed.from_salts("NaCl 10 mM + MgCl2 5 mM"), ions.Feed.from_salts("Na2SO4 5 mM + NaCl 2 mM")]
FLUXES = np.array([0.0, 5e-6, 2e-5])


@pytest.fixture(scope="module")
def real() -> measurements.Measurements:
    return measurements.load_dataset("nf270_fdl2021")


@pytest.fixture(scope="module")
def dspmde_bundle(real, tmp_path_factory) -> tuple[bundle.Bundle, object]:
    """A smoke-budget DSPM-DE calibration of the real data, and its saved directory."""
    b = calibration.calibrate(
        "dspmde", real, profile="smoke", sources=[measurements.MEASURED_DIR / "nf270_fdl2021.csv"]
    )
    return b, b.save(tmp_path_factory.mktemp("b") / "dspmde")


def test_mechanistic_models_round_trip_through_json():
    langmuir = fitting.Spec("langmuir", ("Mg2+",)).model({**fitting.PAPER_TABLE2, "sites": 20.0, "K[Mg2+]": 0.05})
    sf = friction.SFModel(
        {"Na+": 1.0, "Cl-": 2.0, "Mg2+": 5.0}, X=-30.0, water_fraction=0.3, thickness=2e-6, partition=0.8
    )
    for model in (langmuir, fitting.Spec("freundlich").model({**fitting.PAPER_TABLE2, "n": 0.3}), sf):
        again = type(model).from_dict(json.loads(json.dumps(model.to_dict())))
        assert again == model
        np.testing.assert_array_equal(again.solve(FEEDS[:1], FLUXES).permeate, model.solve(FEEDS[:1], FLUXES).permeate)
    with pytest.raises(ValueError, match="membrane"):
        fitting.Model.from_dict({"isotherm": None, "temperature_model": "none"})


def test_laplace_draws_follow_the_covariance_hold_fixed_coordinates_and_stay_in_the_box():
    cov = np.array([[0.04, 0.018, 0.0], [0.018, 0.09, 0.0], [0.0, 0.0, 1.0]])
    theta = np.array([1.0, -2.0, 0.5])
    lo, hi = np.array([-10.0, -10.0, 0.0]), np.array([10.0, 10.0, 1.0])
    draws = np.array(fitting.laplace_draws(theta, cov, lambda t: t, seed=3, lo=lo, hi=hi, fixed=[2], n=20000))
    np.testing.assert_allclose(np.cov(draws[:, :2].T), cov[:2, :2], rtol=0.05)
    np.testing.assert_allclose(draws[:, :2].mean(axis=0), theta[:2], atol=0.01)
    assert (draws[:, 2] == 0.5).all()
    wide = np.array(fitting.laplace_draws(theta, 100 * np.eye(3), lambda t: t, seed=0, lo=lo, hi=hi, n=500))
    assert (wide >= lo).all() and (wide <= hi).all() and (wide[:, 2] == 0.0).any()


def test_a_list_of_mechanistic_models_predicts_the_mean_and_the_spread():
    a, b = dspmde.Membrane.nf270(), dspmde.Membrane.nf270(X_d=-20.0)
    same = predict(FEEDS, FLUXES, [a, a])
    assert (same["R_std"] == 0).all()
    both = predict(FEEDS, FLUXES, [a, b])
    Ra, Rb = predict(FEEDS, FLUXES, a)["R"].to_numpy(), predict(FEEDS, FLUXES, b)["R"].to_numpy()
    np.testing.assert_allclose(both["R"], (Ra + Rb) / 2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(both["R_std"], np.abs(Ra - Rb) / 2, rtol=1e-9, atol=1e-15)
    assert (both.loc[both["Jv_m_s"] > 0, "R_std"] > 0).all()


def test_calibrated_bundle_predicts_with_the_fit_and_the_spread_of_its_posterior(dspmde_bundle, real):
    b, directory = dspmde_bundle
    assert b.point_estimate and len(b.members) == 1 + calibration.POSTERIOR_DRAWS
    scored = fitting.predictions(real, b.members[0])
    np.testing.assert_allclose(b.scored["R_pred"], scored["R_pred"], rtol=1e-12)  # R is the fitted model's
    np.testing.assert_allclose(b.score(real)["R_std"], b.scored["R_std"], rtol=1e-12)
    assert (b.scored["R_std"] > 0).any()
    loaded = nanoutils.load(directory)
    assert loaded.members == b.members and loaded.domain == json.loads(json.dumps(b.domain))
    with pytest.warns(bundle.ExtrapolationWarning):
        frame = predict(FEEDS, FLUXES, loaded)
    T = 293.15  # the real data were measured at 20 °C: the bundle predicts there
    np.testing.assert_allclose(frame["R"], predict(FEEDS, FLUXES, b.members[0], temperature=T)["R"], rtol=1e-12)
    np.testing.assert_allclose(
        frame["R_std_param"], predict(FEEDS, FLUXES, b.members, temperature=T)["R_std"], rtol=1e-12
    )
    zero = frame["Jv_m_s"] == 0  # zero flux: every member gives R = 0, only the residual scatter is left
    assert (frame.loc[zero, "R_std_param"] == 0).all() and np.allclose(frame.loc[zero, "R_std"], b.residual_sd)


def test_predictive_std_adds_the_calibration_residual_scatter(dspmde_bundle, real):
    b, directory = dspmde_bundle
    r = (b.scored["R_pred"] - b.scored["R_meas"]).to_numpy()
    n_params = len(b.info[0]["parameters"])
    assert b.residual_sd == pytest.approx(np.sqrt(np.sum(r**2) / (len(r) - n_params)), rel=1e-12)
    assert b.residual_sd > b.scored["R_std_param"].median()  # the misfit, not the parameters, dominates here
    np.testing.assert_allclose(b.scored["R_std"], np.hypot(b.scored["R_std_param"], b.residual_sd), rtol=1e-12)
    loaded = nanoutils.load(directory)
    assert loaded.residual_sd == b.residual_sd
    with pytest.warns(bundle.ExtrapolationWarning):
        frame = predict(FEEDS, FLUXES, loaded)
    np.testing.assert_allclose(frame["R_std"], np.hypot(frame["R_std_param"], b.residual_sd), rtol=1e-12)
    # most calibration points lie within ± 2 R_std, more than within ± 2 of the members' spread alone
    assert bundle.coverage(b.scored) >= max(0.9, bundle.coverage(b.scored.assign(R_std=b.scored["R_std_param"])))


def test_bundle_predicts_at_its_calibration_temperature_and_flags_others(dspmde_bundle):
    b, _ = dspmde_bundle
    assert b.domain["T_C"] == [20.0, 20.0] and b.temperature_K() == pytest.approx(293.15)
    inside = [ions.Feed.from_salts("NaCl 10 mM + NaNO3 0.2 mM + NH4Cl 0.2 mM")]  # a calibration feed
    at_20 = predict(inside, [2e-5], b)
    assert not at_20["extrapolated"].any()
    fit = b.members[0]
    np.testing.assert_allclose(at_20["R"], fit.solve(inside, [2e-5], temperature=293.15).to_frame()["R"], rtol=1e-12)
    assert not np.allclose(at_20["R"], fit.solve(inside, [2e-5], temperature=298.15).to_frame()["R"], rtol=1e-6)
    with pytest.warns(bundle.ExtrapolationWarning, match="temperature 35 °C > 20 °C seen"):
        at_35 = predict(inside, [2e-5], b, temperature=308.15)
    assert at_35["extrapolated"].all() and at_35["why"].eq("temperature 35 °C > 20 °C seen").all()
    np.testing.assert_allclose(at_35["R"], fit.solve(inside, [2e-5], temperature=308.15).to_frame()["R"], rtol=1e-12)
    wide = dataclasses.replace(b, domain={**b.domain, "T_C": [15.0, 25.0]})
    with pytest.raises(bundle.BundleError, match="calibrated at 15–25 °C: give the temperature"):
        predict(inside, [2e-5], wide)
    assert not predict(inside, [2e-5], wide, temperature=291.15)["extrapolated"].any()


def test_temperatures_outside_the_calibration_range_are_flagged_and_learned_models_say_they_cannot_follow():
    domain = {"T_C": [20.0, 20.0], "pretraining": {"T_C": [25.0, 25.0]}}
    assert bundle.temperature_reasons(20.0, domain, learned=True) == []  # fine-tuned at 20 °C: predicts as there
    assert bundle.temperature_reasons(20.03, domain) == []
    assert bundle.temperature_reasons(10.0, domain) == ["temperature 10 °C < 20 °C seen"]
    assert bundle.temperature_reasons(30.0, domain, learned=True) == [
        "temperature 30 °C > 20 °C seen (the model has no temperature input)"
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: dspmde.Membrane.nf270(),
        lambda: fitting.Spec().model(dict(fitting.PAPER_TABLE2)),
        lambda: friction.SFModel(
            {"Na+": 1.0, "Cl-": 2.0, "Mg2+": 5.0, "SO4-2": 8.0},
            X=-30.0,
            water_fraction=0.3,
            thickness=2e-6,
            partition=0.8,
        ),
        lambda: sdem.SDEMModel({"Na+": 1e-6, "Mg2+": 3e-7, "Cl-": 5e-6, "SO4-2": 1e-7}),
    ],
    ids=["membrane", "fitting.Model", "SFModel", "SDEMModel"],
)
def test_every_mechanistic_model_is_solved_at_the_temperature_asked(make, monkeypatch):
    model = make()
    feeds = [ions.Feed.from_salts("NaCl 10 mM + MgSO4 5 mM")]
    owner, name = (dspmde, "solve") if isinstance(model, dspmde.Membrane) else (type(model), "solve")
    original = getattr(owner, name)
    expected = (
        original(feeds, FLUXES, membrane=model, temperature=283.15)
        if owner is dspmde
        else original(model, feeds, FLUXES, temperature=283.15)
    ).to_frame()["R"]
    seen = []
    monkeypatch.setattr(owner, name, lambda *a, **k: seen.append(k["temperature"]) or original(*a, **k))
    for members in (model, [model, model]):
        np.testing.assert_allclose(predict(feeds, FLUXES, members, temperature=283.15)["R"], expected, rtol=1e-12)
    assert seen == [283.15] * 3


def test_dspmde_rejections_depend_on_temperature():
    """What the temperature tests rely on: a 5 K error changes the DSPM-DE prediction."""
    at = {T: predict(FEEDS, FLUXES, dspmde.Membrane.nf270(), temperature=T)["R"] for T in (293.15, 298.15)}
    assert np.abs(at[293.15] - at[298.15]).max() > 1e-3


def test_each_member_is_solved_once_per_prediction(dspmde_bundle, monkeypatch):
    b, _ = dspmde_bundle
    calls = []
    original = fitting.Model.solve
    monkeypatch.setattr(fitting.Model, "solve", lambda self, *a, **k: calls.append(k) or original(self, *a, **k))
    with pytest.warns(bundle.ExtrapolationWarning):
        predict(FEEDS, FLUXES, b)
    assert len(calls) == len(b.members) and all(k["temperature"] == pytest.approx(293.15) for k in calls)


def test_validity_flags_name_what_lies_outside_the_domain(dspmde_bundle):
    b, _ = dspmde_bundle
    inside = ions.Feed.from_salts("NaCl 10 mM + NaNO3 0.2 mM + NH4Cl 0.2 mM")  # a calibration feed
    odd = ions.Feed.from_salts("LiCl 1 mM + NaCl 10 mM")
    with pytest.warns(bundle.ExtrapolationWarning, match="10 of 14 predicted rows extrapolate") as record:
        frame = predict([inside, odd], [2e-5, 1e-4], b)
    assert len(record) == 1
    ok = frame[(frame["feed_id"] == 0) & (frame["Jv_m_s"] == 2e-5)]
    assert not ok["extrapolated"].any() and (ok["why"] == "").all()
    assert frame.loc[frame["Jv_m_s"] == 1e-4, "why"].str.contains("flux 360 LMH > 201 LMH seen", regex=False).all()
    assert frame.loc[frame["feed_id"] == 1, "why"].str.contains("Li+ not in calibration data", regex=False).all()
    assert np.isfinite(frame["R"]).all()  # nothing clipped or dropped: extrapolated rows are still predicted


def test_pretraining_domain_flags_fluxes_beyond_it():
    domain = {
        "ions": ["Na+", "Cl-"],
        "c_mM": {"Na+": [1.0, 100.0], "Cl-": [1.0, 100.0]},
        "ionic_strength_mM": [1.0, 100.0],
        "flux_LMH": [5.0, 400.0],
        "pretraining": {"ions": ["Na+", "Cl-"], "c_mM": [0.1, 1000.0], "flux_LMH": [0.0, 216.0]},
    }
    assert bundle.flux_reasons(300 / 3.6e6, domain) == ["flux 300 LMH > 216 LMH pre-trained"]
    assert bundle.flux_reasons(0.0, domain) == []
    assert bundle.feed_reasons(ions.Feed({"Na+": 2000.0, "Cl-": 2000.0}), domain) == [
        "Na+ 2e+03 mM > 100 mM seen",
        "Cl- 2e+03 mM > 100 mM seen",
        "ionic strength 2e+03 mM > 100 mM seen",
        "Na+ 2e+03 mM > 1e+03 mM pre-trained",
        "Cl- 2e+03 mM > 1e+03 mM pre-trained",
    ]


def test_save_is_atomic_and_replaces_only_a_bundle(dspmde_bundle, tmp_path, monkeypatch):
    b, directory = dspmde_bundle
    target = b.save(tmp_path / "m")
    before = (target / "model.json").read_text()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle, "write_report", broken)
    with pytest.raises(RuntimeError):
        b.save(tmp_path / "m")
    with pytest.raises(RuntimeError):
        b.save(tmp_path / "new")
    assert (target / "model.json").read_text() == before and not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary directories left


def test_a_bundle_from_a_newer_version_is_refused(dspmde_bundle, tmp_path):
    _, directory = dspmde_bundle
    spec = json.loads((directory / "model.json").read_text())
    for change in ({"format": bundle.FORMAT_VERSION + 1}, {"nanoutils_version": "99.0"}):
        d = tmp_path / str(len(list(tmp_path.iterdir())))
        d.mkdir()
        for f in directory.iterdir():
            if f.is_file():
                (d / f.name).write_bytes(f.read_bytes())
        (d / "model.json").write_text(json.dumps({**spec, **change}))
        with pytest.raises(bundle.BundleError, match="newer than this nanoutils"):
            bundle.load(d)


def test_coverage_counts_points_within_k_std():
    import pandas as pd

    frame = pd.DataFrame(
        {"R_meas": [0.5, 0.5, 0.5, 0.5], "R_pred": [0.5, 0.6, 0.9, np.nan], "R_std": [0.0, 0.05, 0.1, 0.1]}
    )
    assert bundle.coverage(frame) == pytest.approx(2 / 3)


def test_unknown_model_and_a_model_that_cannot_take_the_data(real):
    with pytest.raises(calibration.CalibrationError, match="unknown model 'dspm'; choose one of dspmde"):
        calibration.calibrate("dspm", real, profile="smoke")
    nacl = real.subset([k for k in real.feed_keys if "NaCl" in k])
    with pytest.raises(calibration.CalibrationError, match="divalent"):
        calibration.calibrate("dspmde_langmuir", nacl, profile="smoke")


@pytest.mark.slow
def test_learned_calibration_gives_an_ensemble_with_the_pretraining_domain(real, tmp_path):
    """Smoke-profile neural ODE: pre-trained in a temporary run directory, fine-tuned with 2 seeds."""
    profile = Profile("smoke", root=tmp_path)
    b = calibration.calibrate("neural_ode", real.subset(real.feed_keys[:1]), profile=profile, seeds=2)
    assert not b.point_estimate and len(b.members) == 2
    assert (profile.run_dir / "checkpoints" / "neural_ode" / "last.pt").is_file()
    loaded = bundle.load(b.save(tmp_path / "ode"))
    with pytest.warns(bundle.ExtrapolationWarning):
        frame = predict(FEEDS[:1], [2e-5, 1e-4], loaded)
    assert (frame.loc[frame["Jv_m_s"] > 0, "R_std"] > 0).all()
    assert (
        frame.loc[frame["Jv_m_s"] == 1e-4, "why"].str.contains("flux 360 LMH > 216 LMH pre-trained", regex=False).all()
    )
