"""Solution-friction baseline: closed-form limits, balances, parameter recovery, bad inputs."""

import numpy as np
import pandas as pd
import pytest
from problems import uncharged_rejection

from nanoutils import dspmde, fitting, friction, ions, measurements, predict
from nanoutils.fitting import FitError

TRUE = friction.SFModel(
    {"Na+": 0.5, "Mg2+": 6.0, "Cl-": 0.2, "SO4-2": 12.0}, X=-40.0, water_fraction=0.3, thickness=1.5e-6, partition=0.4
)
FEEDS = {
    "NaCl-1": "NaCl 1 mM",
    "NaCl-20": "NaCl 20 mM",
    "Na2SO4": "Na2SO4 10 mM",
    "MgCl2": "MgCl2 10 mM",
    "mix": "NaCl 10 mM + MgSO4 5 mM",
}
FLUXES_UM_S = (2.0, 6.0, 15.0, 35.0)


def salt_coefficients(model: friction.SFModel, cation: str, anion: str) -> tuple[float, float]:
    """(K_f, ε_w D_m) of a 1:1 salt at X = 0: c₊ = c₋ eliminates the diffusion potential, so the salt moves
    with the harmonic mean of ε_w D_m,i and the (1/ε_w D_m,i)-weighted mean of K_f,i (Φ is common)."""
    p = model.pore_coefficients([cation, anion])
    kd_d = p.K_d * p.D
    d_s = 2.0 / (1.0 / kd_d).sum()
    return float(d_s / 2.0 * (p.K_c / kd_d).sum()), float(d_s)


@pytest.mark.parametrize("ratios", [{"Na+": 1.0, "Cl-": 1.0}, {"Na+": 3.0, "Cl-": 0.2}])
def test_uncharged_limit_matches_hindered_transport_closed_form(ratios):
    model = friction.SFModel(ratios, X=0.0, water_fraction=0.25, thickness=2e-6, partition=0.6)
    jv = np.array([0.0, 1e-6, 5e-6, 2e-5, 8e-5])
    res = model.solve([ions.Feed.from_salts("NaCl 10 mM")], jv, n_cells=40)
    k_f, eps_dm = salt_coefficients(model, "Na+", "Cl-")
    if ratios["Na+"] == ratios["Cl-"]:
        assert k_f == pytest.approx(1.0 / (1.0 + ratios["Na+"]), rel=1e-14)
    # Pe = K_f v_w L / D_m with v_w = J_v/ε_w, i.e. K_f J_v L / (ε_w D_m)
    exact = uncharged_rejection(model.partition, k_f, eps_dm, jv, model.thickness)
    assert exact[-1] > 0.3  # a real test: far from both zero and the asymptote
    # exact for constant coefficients; the diffusion potential between unlike ions leaves O(h²) ≈ 1e-5
    np.testing.assert_allclose(res.rejection[0, :, 0], exact, atol=1e-5, rtol=0)
    np.testing.assert_allclose(res.rejection[0, :, 1], exact, atol=1e-5, rtol=0)
    assert res.rejection[0, 0, 0] == 0.0  # zero flux ⇒ zero rejection


def test_high_flux_rejection_tends_to_one_minus_phi_kf_and_pe_ignores_friction():
    base = friction.SFModel({"Na+": 2.0, "Cl-": 2.0}, X=0.0, water_fraction=0.4, thickness=1e-6, partition=0.5)
    res = base.solve([ions.Feed.from_salts("NaCl 5 mM")], [3e-2])  # Pe ≈ 45
    assert res.rejection[0, 0, 0] == pytest.approx(1.0 - 0.5 / 3.0, abs=1e-6)
    # K_f/D_m = 1/D: the flux scale of the rise is independent of r (only the asymptote moves)
    lo, hi = (
        base.with_(friction_ratio={"Na+": r, "Cl-": r}).solve([ions.Feed.from_salts("NaCl 5 mM")], [2e-5])
        for r in (0.5, 8.0)
    )
    pe = 2e-5 * 1e-6 / 0.4 * (1 / ions.get("Na+").diffusivity + 1 / ions.get("Cl-").diffusivity) / 2
    for res, r in ((lo, 0.5), (hi, 8.0)):
        phi_k = 0.5 / (1 + r)
        assert res.rejection[0, 0, 0] == pytest.approx(1 - phi_k / (1 - (1 - phi_k) * np.exp(-pe)), abs=1e-6)


def test_zero_flux_charged_mixture_gives_zero_rejection_and_permeate_is_neutral():
    feeds = [ions.Feed.from_salts(s) for s in FEEDS.values()]
    res = TRUE.solve(feeds, np.array([0.0, 3e-6, 3e-5]), film=dspmde.Film(3e-5))
    assert res.converged.all()
    np.testing.assert_array_equal(np.nan_to_num(res.rejection[:, 0]), 0.0)
    z = ions.charges(res.species)
    balance = np.abs(res.permeate @ z) / (res.permeate @ np.abs(z))
    assert balance.max() <= 1e-9
    assert np.nanmax(res.rejection) > 0.5 and np.nanmin(res.rejection) < 0.0  # Donnan does its work
    # charge matters: the same membrane uncharged rejects Na2SO4 far less at the highest flux
    assert TRUE.with_(X=0.0).solve(feeds[2], 3e-5).rejection[0, 0, 0] < res.rejection[2, 2, 0] - 0.1


def test_predict_accepts_an_sf_model():
    feed = ions.Feed.from_salts("Na2SO4 10 mM")
    frame = predict(feed, [5e-6, 2e-5], TRUE)
    ref = TRUE.solve([feed], [5e-6, 2e-5]).to_frame()
    pd.testing.assert_frame_equal(frame, ref)


def synthetic_csv(path, model=TRUE, sigma=0.01):
    """Noise-free SF rejections of FEEDS at FLUXES_UM_S, schema CSV (intrinsic: no film)."""
    rows = []
    for feed_id, recipe in FEEDS.items():
        feed = ions.Feed.from_salts(recipe)
        res = model.solve([feed], np.array(FLUXES_UM_S) * 1e-6, temperature=293.15)
        for m, jv in enumerate(FLUXES_UM_S):
            for i, ion in enumerate(res.species):
                rows.append(
                    {
                        "study": "synth",
                        "feed_id": feed_id,
                        "membrane": "test",
                        "T_C": 20,
                        "feed_mol_m3": "; ".join(f"{k}={v:.17g}" for k, v in feed.items()),
                        "rejection_type": "intrinsic",
                        "quantity": ion,
                        "Jv_um_s": jv,
                        "R_frac": repr(float(res.rejection[0, m, i])),
                        "sigma_R_frac": sigma,
                        "source": "synthetic SF test data",
                    }
                )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return measurements.load_measurements(synthetic_csv(tmp_path_factory.mktemp("sf") / "synth.csv"))


def identifiable(model: friction.SFModel) -> np.ndarray:
    """The d + 2 combinations rejections depend on: Φ K_f,i (species order), L/ε_w (m), X/Φ (mol/m³)."""
    p = [model.partition / (1 + model.friction_ratio[s]) for s in ("Na+", "Mg2+", "Cl-", "SO4-2")]
    return np.array(p + [model.thickness / model.water_fraction, model.X / model.partition])


def test_rejections_depend_only_on_the_identifiable_combinations():
    feeds = [ions.Feed.from_salts(s) for s in FEEDS.values()]
    ref = TRUE.solve(feeds, np.array(FLUXES_UM_S) * 1e-6).rejection
    alpha = 2.0  # Φ → αΦ, X → αX, 1 + r → α(1 + r); and ε_w, L → both × 3
    twin = TRUE.with_(
        partition=alpha * TRUE.partition,
        X=alpha * TRUE.X,
        water_fraction=0.9,
        thickness=3 * TRUE.thickness,
        friction_ratio={s: alpha * (1 + r) - 1 for s, r in TRUE.friction_ratio.items()},
    )
    np.testing.assert_allclose(identifiable(twin), identifiable(TRUE), rtol=1e-14)
    np.testing.assert_allclose(twin.solve(feeds, np.array(FLUXES_UM_S) * 1e-6).rejection, ref, atol=1e-9)
    other = TRUE.with_(X=alpha * TRUE.X)  # changing one combination does change rejections
    assert np.nanmax(np.abs(other.solve(feeds, np.array(FLUXES_UM_S) * 1e-6).rejection - ref)) > 0.05


def test_fit_recovers_known_parameters(synth):
    assert fitting.Objective(synth).chi2(TRUE) < 1e-12
    result = friction.fit(synth, n_starts=1, max_nfev=40, partition=0.8)
    m = result.model
    assert result.n_params == m.n_params == len(synth.arrays().species) + 4 == 8
    assert result.n_fitted == 6
    assert result.chi2 < 1e-8 and result.n_unconverged == 0
    assert result.trace["objective"].iloc[0] > 1e3  # the fixed start is far from the answer
    np.testing.assert_allclose(identifiable(m), identifiable(TRUE), rtol=1e-4)
    assert (m.partition, m.water_fraction) == (0.8, 0.3)
    for ion, r in TRUE.friction_ratio.items():  # with Φ given, the ratios follow: 1 + r = Φ/(Φ K_f)
        assert 1 + m.friction_ratio[ion] == pytest.approx((1 + r) * 0.8 / TRUE.partition, rel=1e-4), ion
    frame = fitting.predictions(synth, m)
    assert (frame["R_pred"] - frame["R_meas"]).abs().max() < 1e-5
    assert list(result.table().index[:4]) == [f"Φ·K_f[{s}]" for s in m.species]


@pytest.mark.parametrize(
    "field, value",
    [("X", float("nan")), ("water_fraction", 1.5), ("thickness", 0.0), ("partition", -0.2), ("born_eps_p", 0.0)],
)
def test_bad_parameters_are_named(field, value):
    with pytest.raises(friction.SFError, match=f"{field}.*{value}"):
        TRUE.with_(**{field: value})


def test_bad_friction_and_missing_ion_are_named():
    with pytest.raises(friction.SFError, match=r"friction_ratio\['Na\+'\].*-1"):
        friction.SFModel({"Na+": -1.0, "Cl-": 1.0}, X=0.0, water_fraction=0.3, thickness=1e-6, partition=0.5)
    with pytest.raises(ions.UnknownIonError, match="Xx"):
        friction.SFModel({"Xx+": 1.0}, X=0.0, water_fraction=0.3, thickness=1e-6, partition=0.5)
    with pytest.raises(friction.SFError, match="K\\+"):
        TRUE.solve([ions.Feed.from_salts("KCl 10 mM")], 1e-5)
    with pytest.raises(dspmde.FluxError, match="-1"):
        TRUE.solve([ions.Feed.from_salts("NaCl 10 mM")], -1e-6)


def test_bad_fit_budget_is_named(synth):
    with pytest.raises(FitError, match="n_starts.*0"):
        friction.fit(synth, n_starts=0)
    with pytest.raises(FitError, match="Measurements"):
        friction.fit(synth.arrays())


def test_born_term_adds_dspmde_dielectric_exclusion():
    born = TRUE.with_(born_eps_p=40.0)
    names = ["Na+", "Mg2+", "Cl-", "SO4-2"]
    shift = born.pore_coefficients(names).ln_phi - TRUE.pore_coefficients(names).ln_phi
    radius = np.array([ions.get(s).stokes_radius for s in names])
    np.testing.assert_allclose(shift, dspmde.born_log_partition(ions.charges(names), radius, 40.0, TRUE.eps_b, 298.15))
    feed = ions.Feed.from_salts("MgCl2 10 mM")
    assert born.solve(feed, 2e-5).rejection[0, 0, 0] > TRUE.solve(feed, 2e-5).rejection[0, 0, 0] + 0.02
