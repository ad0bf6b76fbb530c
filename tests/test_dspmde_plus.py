"""DSPM-DE with per-ion partition energies ΔW and charge isotherms: limits, recovery, serialisation, ensembles."""

import json

import numpy as np
import pytest
from test_fitting import TRUE_LANGMUIR, synthetic_csv

from nanoutils import dspmde, dspmde_plus, fitting, ions, measurements, profiles, transfer

FEEDS = [ions.Feed.from_salts(s) for s in ("NaCl 10 mM", "MgSO4 10 mM", "NaCl 20 mM + Na2SO4 5 mM + MgCl2 3 mM")]
FLUXES = np.geomspace(1e-7, 1e-4, 5)
SPECIES = ("Na+", "Mg2+", "Cl-", "SO4-2")


def test_zero_partition_energy_is_dspmde_bit_for_bit():
    plain = dspmde.solve(FEEDS, FLUXES)
    zero = dspmde.solve(FEEDS, FLUXES, partition_energy={s: 0.0 for s in SPECIES})
    np.testing.assert_array_equal(zero.permeate, plain.permeate)
    spec = fitting.Spec("langmuir", ("Mg2+",), partition_ions=SPECIES)
    params = {**TRUE_LANGMUIR, "sites": 0.0, **{f"dW[{s}]": 0.0 for s in SPECIES}}
    np.testing.assert_array_equal(
        spec.model(params).solve(FEEDS, FLUXES).permeate,
        dspmde.solve(FEEDS, FLUXES, membrane=fitting.membrane(TRUE_LANGMUIR)).permeate,
    )


def test_partition_energy_shifts_ln_phi_and_a_charge_proportional_one_is_a_gauge():
    nf = dspmde.Membrane.nf270()
    dw = {"Na+": 0.7, "Cl-": -1.2}
    base, shifted = (dspmde.pore_ions(SPECIES, nf, 298.15, partition_energy=p) for p in (None, dw))
    np.testing.assert_allclose(shifted.ln_phi - base.ln_phi, [-0.7, 0.0, 1.2, 0.0], atol=1e-15)
    # ΔW_i = a z_i moves every Donnan potential by a and leaves every concentration unchanged
    gauge = {s: 1.5 * ions.get(s).z for s in SPECIES}
    np.testing.assert_allclose(
        dspmde.solve(FEEDS, FLUXES, partition_energy=gauge).permeate, dspmde.solve(FEEDS, FLUXES).permeate, rtol=1e-7
    )
    # a positive ΔW on the co-ion of a negative membrane raises the salt rejection
    lo, hi = (dspmde.solve(FEEDS[:1], FLUXES, partition_energy={"Cl-": w}).rejection[0, :, 0] for w in (0.0, 1.0))
    assert (hi[1:] > lo[1:]).all()
    with pytest.raises(dspmde.PartitionEnergyError, match="Cl- must be a finite number"):
        dspmde.solve(FEEDS, FLUXES, partition_energy={"Cl-": float("nan")})


def _identified(values: dict[str, float], species: tuple[str, ...]) -> dict[str, float]:
    """``values`` with its components along the two unobservable directions removed: z (the Donnan gauge)
    and z²/r_s (the Born term, which ε_p moves); what a fit with a prior at 0 can recover."""
    z = np.array([ions.get(s).z for s in species])
    born = z**2 / np.array([ions.get(s).stokes_radius for s in species])
    basis, _ = np.linalg.qr(np.stack([z, born], axis=1))
    v = np.array([values[s] for s in species])
    return dict(zip(species, v - basis @ (basis.T @ v), strict=True))


# Recovery design: trace ions of both signs in three dominant salts, MgCl2 at two concentrations for the
# binding; a membrane characterised beforehand (Z bounded to ±1 %). Every ion's rejection stays away from 1,
# so every ΔW is seen by the data (SO4²⁻, rejected ≈ 100 %, would leave its ΔW to the prior).
RECOVERY_IONS = ("Na+", "K+", "Mg2+", "Cl-", "NO3-")
RECOVERY_FEEDS = {
    "NaCl-5": "NaCl 5 mM + KNO3 0.5 mM",
    "NaCl-50": "NaCl 50 mM + KNO3 0.5 mM",
    "KCl": "KCl 10 mM + NaNO3 0.5 mM",
    "MgCl2-2": "MgCl2 2 mM + NaNO3 0.5 mM + KCl 0.5 mM",
    "MgCl2-20": "MgCl2 20 mM + NaNO3 0.5 mM + KCl 0.5 mM",
}
PLUS = fitting.Spec("langmuir", ("Mg2+",), "stokes_einstein", partition_ions=RECOVERY_IONS, prior_width=3.0)
TRUE_DW = _identified({"Na+": 0.8, "K+": -0.3, "Mg2+": -0.6, "Cl-": 0.5, "NO3-": -1.0}, RECOVERY_IONS)
TRUE_PLUS = {**TRUE_LANGMUIR, **{f"dW[{s}]": v for s, v in TRUE_DW.items()}}


@pytest.fixture(scope="module")
def synth_plus(tmp_path_factory):
    path = tmp_path_factory.mktemp("plus") / "plus.csv"
    return measurements.load_measurements(
        synthetic_csv(path, TRUE_PLUS, spec=PLUS, feeds=RECOVERY_FEEDS, fluxes_um_s=(2.0, 10.0, 40.0, 100.0))
    )


@pytest.fixture(scope="module")
def fit_plus(synth_plus):
    known_z = {n: tuple(sorted((0.99 * TRUE_PLUS[n], 1.01 * TRUE_PLUS[n]))) for n in fitting.PARAMETERS}
    return fitting.fit(
        synth_plus,
        start={**TRUE_LANGMUIR, "sites": 20.0, "K[Mg2+]": 0.15},
        bounds=known_z,
        anneal_maxiter=0,
        nm_maxiter=40,
        local="least-squares",
        isotherm="langmuir",
        binding_ions=("Mg2+",),
        temperature_model="stokes_einstein",
        partition_ions=RECOVERY_IONS,
        prior_width=3.0,
        n_cells=10,
    )


def test_fit_recovers_known_partition_energies_and_binding(fit_plus, synth_plus):
    res = fit_plus
    assert res.names == fitting.PARAMETERS + ("sites", "K[Mg2+]") + tuple(f"dW[{s}]" for s in RECOVERY_IONS)
    for s in RECOVERY_IONS:
        assert res.params[f"dW[{s}]"] == pytest.approx(TRUE_DW[s], abs=0.1), s
    # the data fix the charge the binding gives each feed (Γ and K separately much less)
    a = synth_plus.arrays()
    fitted, true = (
        dict(zip(a.feed_keys, m.charge(a.c_feed, a.species), strict=True)) for m in (res.model, PLUS.model(TRUE_PLUS))
    )
    assert fitted["synth/MgCl2-20"] == pytest.approx(true["synth/MgCl2-20"], abs=1.0) and true["synth/MgCl2-20"] > 0
    assert fitted["synth/MgCl2-2"] == pytest.approx(true["synth/MgCl2-2"], abs=3.0)
    # ΔW ∝ z is a gauge: a single ΔW is known only through the prior, a contrast of like ions from the data
    names = list(res.names)
    i, j = names.index("dW[Cl-]"), names.index("dW[NO3-]")
    contrast_sd = np.sqrt(res.covariance[i, i] + res.covariance[j, j] - 2 * res.covariance[i, j])
    assert contrast_sd < 0.5 < 1.0 < min(res.stderr["dW[Cl-]"], res.stderr["dW[NO3-]"])
    prior = PLUS.prior_residuals(res.params)
    data_chi2 = fitting.Objective(synth_plus, n_cells=10).chi2(res.model)
    assert res.chi2 == pytest.approx(data_chi2 + prior @ prior, rel=1e-9)  # the prior is part of eq. 11
    assert prior @ prior > 0 and res.chi2 < 0.05 * res.n_points
    table = res.table()
    assert table.loc["dW[Na+]", "unit"] == "kT" and res.correlation.shape == (11, 11)


def test_model_round_trips_through_json_and_flags_ions_without_a_fitted_energy():
    model = PLUS.model(TRUE_PLUS)
    back = fitting.Model.from_dict(json.loads(json.dumps(model.to_dict())))
    assert back == model
    feeds = FEEDS + [ions.Feed.from_salts("KNO3 5 mM")]
    res = back.solve(feeds, FLUXES)
    np.testing.assert_array_equal(res.permeate, model.solve(feeds, FLUXES).permeate)
    assert res.info["prior_mean_ions"] == ("SO4-2",)  # the feeds' ion without a fitted ΔW
    assert fitting.Spec().model(TRUE_LANGMUIR).prior_mean_ions(SPECIES) == ()
    with pytest.raises(fitting.FitError, match="bad DSPM-DE model description"):
        fitting.Model.from_dict({"membrane": {"r_p": 1e-9}})


def test_laplace_ensemble_draws_the_fit_covariance_within_the_bounds(fit_plus, synth_plus):
    members = fitting.laplace_ensemble(fit_plus, n_draws=400, seed=1)
    space = fitting.Space(fit_plus.bounds, fit_plus.names)

    def theta(m):
        p = {
            **{n: getattr(m.membrane, n) for n in fitting.PARAMETERS},
            "sites": m.isotherm.sites,
            "K[Mg2+]": m.isotherm.binding["Mg2+"],
            **{f"dW[{s}]": v for s, v in m.partition_energy.items()},
        }
        return space.theta(p)

    draws = np.stack([theta(m) for m in members])
    assert (draws >= space.lo - 1e-12).all() and (draws <= space.lo + space.span + 1e-12).all()
    sd = np.sqrt(np.diag(fit_plus.covariance))
    inside = np.abs(space.theta(fit_plus.params) - space.lo - 0.5 * space.span) + 3 * sd < 0.5 * space.span
    assert inside.sum() >= 3  # parameters far from their bounds: drawn with the covariance's spread
    np.testing.assert_allclose(draws.std(0)[inside], sd[inside], rtol=0.2)
    pts = transfer.predict_points(synth_plus, members[:8])
    assert (pts["R_std"] > 0).any() and pts["R_pred"].notna().all()


def test_multistart_keeps_the_optima_within_delta_chi2(synth_plus):
    def fit_one(meas, seed):
        return dspmde_plus.fit(
            meas, variant="dspmde", seed=seed, start="random", anneal_maxiter=0, nm_maxiter=8, with_uncertainty=False
        )

    kept = fitting.multistart(synth_plus, fit_one, seeds=(0, 1, 2))
    every = fitting.multistart(synth_plus, fit_one, seeds=(0, 1, 2), delta=np.inf)
    assert len(every) == 3 and [r.chi2 for r in every] == sorted(r.chi2 for r in every)
    assert all(r.chi2 <= every[0].chi2 + fitting.delta_chi2(every[0]) for r in kept)
    assert kept[0].chi2 == every[0].chi2
    members = dspmde_plus.calibrate_multistart(synth_plus, 0, variant="dspmde", n_starts=2, delta=np.inf, nm_maxiter=3)
    default = dspmde_plus.fitted(synth_plus, "dspmde", 0, nm_maxiter=3).model
    assert len(members) == 2 and default in members  # the default start is one of the starts


def test_variants_choose_binding_and_partition_ions_from_the_calibration_feeds(synth_plus):
    assert dspmde_plus.binding_ions(synth_plus) == ("Mg2+",)
    assert dspmde_plus.partition_ions(synth_plus) == RECOVERY_IONS
    no_mg = synth_plus.subset([k for k in synth_plus.feed_keys if "Mg" not in k])
    assert dspmde_plus.binding_ions(no_mg) == ()
    res = dspmde_plus.fit(no_mg, variant="dspmde_plus", anneal_maxiter=0, nm_maxiter=0, with_uncertainty=False)
    assert res.spec.isotherm == "constant" and "Mg2+" not in res.spec.partition_ions
    assert res.model.prior_mean_ions(RECOVERY_IONS) == ("Mg2+",)
    with pytest.raises(fitting.FitError, match="unknown variant 'sdem'"):
        dspmde_plus.fit(no_mg, variant="sdem")


@pytest.mark.parametrize("profile", profiles.PROFILES)
def test_the_fit_budget_is_the_profiles_knob(profile, monkeypatch):
    seen = {}
    monkeypatch.setattr(fitting, "fit", lambda meas, **kw: seen.update(kw))
    dspmde_plus.fit(measurements.load_dataset("nf270_fdl2021"), profile=profile)
    assert seen["nm_maxiter"] == profiles.SETTINGS["dspmde_plus_fit"][profiles.PROFILES.index(profile)]["nm_maxiter"]
    assert {k: seen[k] for k in dspmde_plus.FIXED_BUDGET} == dspmde_plus.FIXED_BUDGET
    dspmde_plus.fit(measurements.load_dataset("nf270_fdl2021"), profile=profile, nm_maxiter=1)
    assert seen["nm_maxiter"] == 1  # a keyword still overrides it
