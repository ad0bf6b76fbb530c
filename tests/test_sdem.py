"""SDEM: closed-form limits, balances, batching, the JSON form, fitting and the shared interfaces."""

import json
import warnings

import numpy as np
import pytest
from problems import sdem_trace_rejection

from nanoutils import data, fitting, ions, predict, sdem

JV = np.array([1e-6, 5e-6, 2e-5, 6e-5])
SALTS = [("NaCl", 1e-6, 5e-6, 1, -1), ("MgCl2", 2e-6, 2e-5, 2, -1), ("Na2SO4", 3e-6, 1e-7, 1, -2)]


def test_zero_flux_gives_zero_rejection():
    model = sdem.SDEMModel({"Na+": 1e-6, "Mg2+": 3e-7, "Cl-": 5e-6, "SO4-2": 1e-7})
    res = model.solve([ions.Feed.from_salts("NaCl 10 mM + MgSO4 5 mM")], [0.0, 1e-6])
    assert res.converged.all()
    assert np.array_equal(res.rejection[0, 0], np.zeros(4))
    assert np.all(np.abs(res.rejection[0, 1]) > 1e-3)


def test_single_salt_with_equal_permeances_rejects_as_jv_over_jv_plus_p():
    p = 4e-6
    for salt in ("NaCl", "MgCl2", "Na2SO4"):
        feed = ions.Feed.from_salts(f"{salt} 20 mM")
        res = sdem.SDEMModel(dict.fromkeys(feed, p)).solve([feed], JV)
        assert np.allclose(res.rejection[0], (JV / (JV + p))[:, None], atol=1e-10), salt


@pytest.mark.parametrize("salt, p_cation, p_anion, z_cation, z_anion", SALTS)
def test_single_salt_matches_closed_form_and_converges_at_second_order(salt, p_cation, p_anion, z_cation, z_anion):
    feed = ions.Feed.from_salts(f"{salt} 10 mM")
    cation, anion = feed
    model = sdem.SDEMModel({cation: p_cation, anion: p_anion})
    exact = JV / (JV + sdem.salt_permeance(p_cation, p_anion, z_cation, z_anion))
    err = {n: np.abs(model.solve([feed], JV, n_cells=n).rejection[0] - exact[:, None]).max() for n in (20, 40)}
    assert err[40] < 1e-4
    assert 3.0 < err[20] / err[40] < 5.0  # O(h²)


def test_trace_ions_follow_the_closed_form_in_the_field_of_the_dominant_salt():
    feed = ions.Feed({"Na+": 10.0, "Cl-": 10.0, "NH4+": 1e-4, "NO3-": 1e-4})
    perm = {"Na+": 1e-6, "Cl-": 1e-5, "NH4+": 2e-5, "NO3-": 3e-6}
    res = sdem.SDEMModel(perm).solve([feed], JV, n_cells=80)
    for ion, z in (("NH4+", 1), ("NO3-", -1)):
        exact = sdem_trace_rejection(JV, perm[ion], z, perm["Na+"], perm["Cl-"], 1, -1)
        assert np.allclose(res.rejection[0, :, res.species.index(ion)], exact, atol=5e-4), ion


def test_trace_counter_ion_is_enriched_when_the_dominant_counter_ion_is_slow():
    # MgCl2: the field that holds fast Cl⁻ back to the pace of slow Mg²⁺ pushes a fast trace cation into the
    # permeate (R < 0); with a fast Mg²⁺ (permeances reversed) the same trace cation is rejected
    feed = ions.Feed.from_salts("MgCl2 10 mM + NH4Cl 0.01 mM")
    slow = sdem.SDEMModel({"Mg2+": 5e-7, "Cl-": 1e-5, "NH4+": 5e-5}).solve([feed], JV)
    fast = sdem.SDEMModel({"Mg2+": 5e-5, "Cl-": 1e-5, "NH4+": 5e-5}).solve([feed], JV)
    nh4 = slow.species.index("NH4+")
    assert np.all(slow.rejection[0, :, nh4] < -0.4) and np.all(fast.rejection[0, :, nh4] > 0.04)
    assert np.all(slow.rejection[0, :, slow.species.index("Mg2+")] > 0.4)


def test_permeate_and_every_layer_node_are_electroneutral_in_a_mixture():
    feeds = [ions.Feed.from_salts("NaCl 10 mM + MgSO4 5 mM + KNO3 1 mM"), ions.Feed.from_salts("CaCl2 3 mM + NaF 2 mM")]
    model = sdem.SDEMModel(
        {"Na+": 2e-6, "K+": 5e-6, "Mg2+": 3e-7, "Ca2+": 4e-7, "Cl-": 4e-6, "NO3-": 8e-6, "SO4-2": 5e-8, "F-": 2e-6}
    )
    res = model.solve(feeds, JV, profiles=True)
    z = ions.charges(res.species)
    assert res.converged.all()
    scale = res.feed @ np.abs(z)
    assert np.abs(res.permeate @ z).max() / scale.min() < 1e-9  # zero current: Σ z j = J_v Σ z c_p = 0
    assert np.abs(res.profiles.concentration @ z).max() / scale.min() < 1e-9


def test_batched_solve_equals_one_by_one():
    feeds = [
        ions.Feed.from_salts(s)
        for s in ("NaCl 10 mM + NaNO3 0.2 mM", "MgCl2 10 mM + NH4Cl 0.2 mM", "Na2SO4 10 mM + NaCl 1 mM")
    ]
    model = sdem.SDEMModel(
        {"Na+": 2e-5, "NH4+": 5e-5, "Mg2+": 1.5e-6, "Cl-": 5e-6, "NO3-": 1e-5, "SO4-2": 5e-7}, exponent=-0.5
    )
    batch = model.solve(feeds, JV)
    for n, feed in enumerate(feeds):
        for m, jv in enumerate(JV):
            one = model.solve([feed], [jv], species=batch.species)
            assert np.allclose(one.permeate[0, 0], batch.permeate[n, m], rtol=1e-9, atol=1e-14)


def test_concentration_exponent_scales_every_permeance_like_the_flux():
    # P_i ∝ c_eq^a multiplies all permeances of a feed by s; with no convection that equals J_v → J_v/s
    feed = ions.Feed.from_salts("MgCl2 10 mM + NaNO3 0.2 mM")
    perm = {"Na+": 2e-5, "Mg2+": 1.5e-6, "Cl-": 5e-6, "NO3-": 1e-5}
    scale = (sdem.equivalent_concentration(np.array([list(feed.values())]), ions.charges(feed))[0] / 5.0) ** 0.7
    with_a = sdem.SDEMModel(perm, exponent=0.7, c_ref=5.0).solve([feed], JV)
    plain = sdem.SDEMModel(perm).solve([feed], JV / scale)
    assert np.allclose(with_a.rejection, plain.rejection, atol=1e-12)


def test_ion_without_permeance_gives_nan_and_a_flag_or_the_named_fallback():
    feeds = [ions.Feed.from_salts("NaCl 10 mM"), ions.Feed.from_salts("KCl 10 mM")]
    model = sdem.SDEMModel({"Na+": 2e-6, "Cl-": 5e-6})
    with pytest.warns(sdem.MissingPermeanceWarning, match="K"):
        res = model.solve(feeds, JV)
    assert res.converged[0].all() and not res.converged[1].any()
    assert np.isnan(res.rejection[1][:, [res.species.index("K+"), res.species.index("Cl-")]]).all()
    assert res.info["no_permeance"] == {1: ["K+"]} and res.info["fallback_ions"] == ()
    back = sdem.SDEMModel({"Na+": 2e-6, "Cl-": 5e-6}, fallback="diffusivity")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = back.solve(feeds, JV)
    assert res.converged.all() and res.info["fallback_ions"] == ("K+",)
    p, used = back.permeances(["K+"])
    assert used == ("K+",)
    assert np.isclose(p[0], 2e-6 * ions.get("K+").diffusivity / ions.get("Na+").diffusivity)
    p, used = back.permeances(["Mg2+"])  # no fitted ion of charge +2: still no permeance
    assert np.isnan(p[0]) and used == ()


def test_json_round_trip_and_bad_input():
    model = sdem.SDEMModel({"Na": 2e-6, "Cl-": 5e-6}, exponent=-0.3, fallback="diffusivity")
    again = sdem.SDEMModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model and again.species == ("Na+", "Cl-")
    for bad in ({"Na+": -1.0}, {"Na+": float("nan")}, {}):
        with pytest.raises(sdem.SDEMError):
            sdem.SDEMModel(bad)
    with pytest.raises(sdem.SDEMError, match="fallback"):
        sdem.SDEMModel({"Na+": 1e-6}, fallback="guess")
    with pytest.raises(sdem.SDEMError, match="activity"):
        model.solve([ions.Feed.from_salts("NaCl 1 mM")], [1e-6], activity="pitzer")
    with pytest.raises(sdem.SDEMError, match="model='sdem'"):
        sdem.SDEMModel.from_dict({"permeance_m_s": {"Na+": 1e-6}})


TRUE = {"Na+": 3e-6, "Cl-": 8e-6, "NO3-": 2e-5, "SO4-2": 2e-7}


def _synthetic(tmp_path, model: sdem.SDEMModel) -> data.Measurements:
    """Noise-free measurements of ``model``: NaCl + trace NaNO3 and Na2SO4 + trace NaCl, 5 fluxes each."""
    feeds = {
        "A": ("NaCl 10 mM + NaNO3 0.2 mM", ["NaCl", "NO3-"]),
        "B": ("Na2SO4 10 mM + NaCl 0.2 mM", ["Na2SO4", "Cl-"]),
    }
    jv = np.array([3e-6, 8e-6, 1.5e-5, 3e-5, 5e-5])
    lines = ["study,feed_id,membrane,T_C,feed_mM,rejection_type,quantity,Jv_um_s,R_frac,source"]
    for fid, (salts, quantities) in feeds.items():
        feed = ions.Feed.from_salts(salts)
        c_p = model.solve([feed], jv, n_cells=10).permeate[0]
        names, text = tuple(feed), "; ".join(f"{k}={float(v)!r}" for k, v in feed.items())
        for q in quantities:
            w = (
                np.array([abs(ions.get(i).z) if i in ions.parse_salt(q) else 0.0 for i in names])
                if q in ("NaCl", "Na2SO4")
                else np.array([float(i == q) for i in names])
            )
            q_feed = np.array(list(feed.values())) @ w
            for j, row in zip(jv, c_p, strict=True):
                r = float(1.0 - (row @ w) / q_feed)
                lines.append(f"syn,{fid},X,25,{text},intrinsic,{q},{float(j * 1e6)!r},{r!r},test")
    path = tmp_path / "syn.csv"
    path.write_text("\n".join(lines) + "\n")
    return data.load_measurements(path)


def test_fit_recovers_known_permeances_from_data_of_the_model(tmp_path):
    meas = _synthetic(tmp_path, sdem.SDEMModel(TRUE))
    fitted = sdem.fit(meas, n_starts=1, n_cells=10)
    assert fitted.chi2 < 1e-6 and not fitted.at_bounds
    for ion, p in TRUE.items():
        assert fitted.model.permeance[ion] == pytest.approx(p, rel=1e-3), ion
    assert fitted.correlation.shape == (4, 4) and np.allclose(np.diag(fitted.correlation), 1.0)
    per = sdem.fit(meas, per_feed=True, shared=("Na+",), n_starts=1, n_cells=10)
    assert per.models["syn/A"].permeance["Na+"] == per.models["syn/B"].permeance["Na+"]
    assert per.models["syn/A"].permeance["NO3-"] == pytest.approx(TRUE["NO3-"], rel=1e-3)
    assert "P[Cl-]@syn/A" in per.names and "P[Na+]" in per.names
    pulled = sdem.fit(meas.subset(["syn/B"]), prior={"SO4-2": (5e-7, 1e-4)}, n_starts=1, n_cells=10)
    assert pulled.model.permeance["SO4-2"] == pytest.approx(5e-7, rel=1e-3) and pulled.chi2 > 1.0  # tight prior wins
    with pytest.raises(fitting.FitError, match="per-feed"):
        _ = per.model


def test_predict_and_fitting_objective_accept_the_model(tmp_path):
    model = sdem.SDEMModel(TRUE)
    frame = predict(ions.Feed.from_salts("NaCl 10 mM"), [1e-6, 1e-5], model)
    assert list(frame.ion) == ["Na+", "Cl-"] * 2 and frame.converged.all()
    exact = 1e-5 / (1e-5 + sdem.salt_permeance(TRUE["Na+"], TRUE["Cl-"], 1, -1))
    assert frame.R.iloc[-1] == pytest.approx(exact, abs=1e-4)
    meas = _synthetic(tmp_path, model)
    r, n_bad = fitting.Objective(meas, n_cells=10).residuals(model)
    assert n_bad == 0 and np.abs(r).max() < 1e-6
    assert np.isfinite(fitting.predictions(meas, model)["R_pred"]).all()


def test_film_layer_lowers_observed_rejection_and_vanishes_for_fast_mass_transfer():
    from nanoutils.dspmde import Film

    feed = ions.Feed.from_salts("NaCl 10 mM")
    model = sdem.SDEMModel({"Na+": 2e-6, "Cl-": 5e-6})
    bare = model.solve([feed], JV).rejection
    slow = model.solve([feed], JV, film=Film(k=2e-5)).rejection
    fast = model.solve([feed], JV, film=Film(k=1.0)).rejection
    assert np.all(slow < bare - 1e-3) and np.allclose(fast, bare, atol=1e-4)
