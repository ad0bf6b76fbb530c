"""DSPM-DE options (issue 10): activity, charge isotherm, image forces, temperature, single element.

Each option must reduce to the original model in its limit (to 1e-10), work batched, keep the
permeate electroneutral, and report failures as non-convergence.
"""

from __future__ import annotations

import numpy as np
import pytest

from nanoutils import activity, dspmde, ions, sampling
from nanoutils.dspmde import (
    ChargeIsotherm,
    IsothermError,
    Membrane,
    TemperatureRangeError,
    image_log_partition,
    pore_ions,
    solve,
    water_viscosity,
)

NF270 = Membrane.nf270()
FEEDS = [ions.Feed.from_salts(s) for s in ("NaCl 10 mM", "MgSO4 10 mM", "NaCl 20 mM + Na2SO4 5 mM + MgCl2 3 mM")]
FLUXES = np.geomspace(1e-7, 1e-4, 5)


@pytest.fixture(scope="module")
def baseline():
    return solve(FEEDS, FLUXES, membrane=NF270)


def _close(a, b, rtol=1e-10):
    np.testing.assert_allclose(a.permeate, b.permeate, rtol=rtol, atol=0.0)
    assert a.converged.all() and b.converged.all()


# --- each option in its limit is the original model -------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"activity": "ideal"},
        {"isotherm": ChargeIsotherm()},
        {"isotherm": ChargeIsotherm.freundlich(0.0)},
        {"isotherm": ChargeIsotherm.langmuir(0.0, {"Mg2+": 1.0})},
        {"isotherm": ChargeIsotherm.langmuir(50.0, {"Mg2+": 0.0})},
        {"image_forces": True, "membrane": NF270.with_(eps_m=NF270.eps_p)},
        {"temperature_model": "stokes_einstein", "temperature": 298.15},
    ],
    ids=[
        "ideal",
        "constant",
        "freundlich-n0",
        "langmuir-no-sites",
        "langmuir-no-binding",
        "image-eps_m=eps_p",
        "stokes-einstein-25C",
    ],
)
def test_option_in_its_limit_is_the_original_model(baseline, options):
    options = {"membrane": NF270, **options}
    _close(solve(FEEDS, FLUXES, **options), baseline)


def test_image_energy_vanishes_without_contrast_and_scales_as_z_squared():
    z = np.array([1.0, -1.0, 2.0, -2.0])
    assert np.all(image_log_partition(z, 0.51e-9, 43.56, 43.56, 298.15) == 0.0)
    ln_phi = image_log_partition(z, 0.51e-9, 43.56, 4.5, 298.15)
    assert np.all(ln_phi < 0) and ln_phi[2] / ln_phi[0] == pytest.approx(4.0) and ln_phi[0] == ln_phi[1]
    # more contrast, more exclusion; a wider pore, less (energy ∝ 1/r_p at fixed ε ratio)
    assert image_log_partition(z, 0.51e-9, 43.56, 2.0, 298.15)[0] < ln_phi[0]
    assert image_log_partition(z, 1.02e-9, 43.56, 4.5, 298.15)[0] == pytest.approx(ln_phi[0] / 2, rel=1e-12)


# --- activity -----------------------------------------------------------------------------------


def test_pitzer_raises_rejection_of_a_concentrated_feed_over_ideal():
    """A depleted pore has a lower ionic strength than a 0.5–1 M feed, so γ_pore > γ_out and
    eq. 8 excludes every ion further: rejection rises over the ideal model (Davies agrees)."""
    feeds = [ions.Feed.from_salts(s) for s in ("NaCl 1000 mM", "Na2SO4 500 mM")]
    ideal = solve(feeds, [1e-6, 1e-5])
    pitzer = solve(feeds, [1e-6, 1e-5], activity="pitzer")
    assert pitzer.converged.all() and pitzer.info["residual"].max() < 1e-7
    na = ideal.species.index("Na+")
    assert np.all(pitzer.rejection[..., na] > ideal.rejection[..., na] + 0.004)
    dilute = solve([ions.Feed.from_salts("NaCl 0.1 mM")], [1e-5], activity="pitzer")
    assert (
        abs(dilute.rejection[0, 0, 0] - solve([ions.Feed.from_salts("NaCl 0.1 mM")], [1e-5]).rejection[0, 0, 0]) < 2e-3
    )


def test_pitzer_partitioning_satisfies_eq8_with_gamma_on_both_sides():
    feed = ions.Feed.from_salts("NaCl 200 mM + MgSO4 50 mM")
    r = solve(feed, 1e-5, activity="pitzer", profiles=True, tol=1e-10)
    names, z = r.species, ions.charges(r.species)
    gamma = lambda c: activity.coefficients(c, names, "pitzer", units="mol/m3")  # noqa: E731
    p = pore_ions(names, NF270, 298.15)
    psi0 = r.profiles.potential[0, 0, 0] / (8.314462618 * 298.15 / 96485.33212)
    c0 = r.profiles.concentration[0, 0, 0]
    lhs = np.log(gamma(r.feed[0]) * r.feed[0] / (gamma(c0) * c0))
    np.testing.assert_allclose(lhs, -(p.ln_phi - z * psi0), atol=1e-8)


# --- charge isotherm ----------------------------------------------------------------------------


@pytest.mark.parametrize("isotherm", [ChargeIsotherm.freundlich(0.4), ChargeIsotherm.langmuir(80.0, {"Mg2+": 0.2})])
def test_isotherm_charge_is_per_feed_in_the_batch(isotherm):
    r = solve(FEEDS, FLUXES[2:], membrane=NF270, isotherm=isotherm)
    x = r.info["X_d"]
    assert np.unique(np.round(x, 9)).size == len(FEEDS)
    for i in range(len(FEEDS)):
        one = solve(r.feed[i], FLUXES[2:], species=r.species, membrane=NF270.with_(X_d=float(x[i])))
        np.testing.assert_allclose(r.permeate[i], one.permeate[0], rtol=1e-10)


def test_isotherm_forms_and_errors():
    c = np.array([[10.0, 0.0, 10.0], [0.0, 10.0, 20.0]])
    names = ("Na+", "Mg2+", "Cl-")
    np.testing.assert_allclose(
        ChargeIsotherm.freundlich(0.5, I_ref=10.0).charge(-40.0, c, names), [-40.0, -40.0 * 3**0.5]
    )
    x = ChargeIsotherm.langmuir(60.0, {"Mg2+": 0.1}).charge(-40.0, c, names)
    assert x[0] == -40.0 and x[1] == pytest.approx(-40.0 + 60.0 * 2 * 1.0 / 2.0)  # Mg binding reverses the charge
    with pytest.raises(IsothermError, match="nope"):
        ChargeIsotherm("nope")
    with pytest.raises(IsothermError, match="-1"):
        ChargeIsotherm.langmuir(-1.0, {})
    with pytest.raises(IsothermError):
        solve(FEEDS[0], 1e-5, isotherm="freundlich")


# --- temperature --------------------------------------------------------------------------------


def test_temperature_model_scales_diffusivity_and_refuses_outside_its_range():
    assert water_viscosity(298.15) == pytest.approx(0.8903e-3, rel=1e-3)  # ion table's η (Kestin 1978)
    assert water_viscosity(293.15) == pytest.approx(1.002e-3, rel=1e-12)
    cold = pore_ions(["Na+", "Cl-"], NF270, 283.15, temperature_model="stokes_einstein")
    warm = pore_ions(["Na+", "Cl-"], NF270, 283.15)
    ratio = cold.D / warm.D
    assert ratio[0] == pytest.approx(ratio[1]) and 0.64 < ratio[0] < 0.655  # (283.15/298.15)(0.890/1.306)
    r = solve(FEEDS[0], [2e-6, 1e-5], temperature=283.15, temperature_model="stokes_einstein")
    assert np.all(r.rejection > solve(FEEDS[0], [2e-6, 1e-5], temperature=283.15).rejection)  # slower diffusion
    for t in (277.0, 324.0):
        with pytest.raises(TemperatureRangeError, match=str(t)):
            solve(FEEDS[0], 1e-5, temperature=t, temperature_model="stokes_einstein")
    with pytest.raises(ValueError, match="nope"):
        solve(FEEDS[0], 1e-5, temperature_model="nope")


# --- everything on, randomised mixtures ---------------------------------------------------------


def test_every_option_on_random_mixtures_converges_and_balances_charge():
    mix = sampling.random_mixtures(30, np.random.default_rng(23), n_ions=(3, 6))
    c, names = mix.concentration, mix.species
    r = solve(
        c,
        np.geomspace(1e-6, 5e-5, 4),
        species=names,
        membrane=NF270,
        activity="pitzer",
        isotherm=ChargeIsotherm.freundlich(0.3),
        image_forces=True,
        temperature=293.15,
        temperature_model="stokes_einstein",
        profiles=True,
    )
    assert r.converged.all() and r.info["residual"].max() < 1e-7
    z = ions.charges(names)
    np.testing.assert_array_less(np.abs(r.permeate @ z) / (r.permeate @ np.abs(z)), 1e-9)
    pore_charge = r.profiles.concentration @ z + r.info["X_d"][:, None, None]
    np.testing.assert_array_less(np.abs(pore_charge), 1e-9 * (np.abs(r.info["X_d"]).max() + r.feed.sum(1).max()))
    assert np.all(r.rejection[r.feed[:, None, :].repeat(4, 1) > 0] <= 1.0)


# --- single element -----------------------------------------------------------------------------


def test_single_element_matches_full_integration_for_dilute_nacl_at_low_flux():
    feeds = [ions.Feed.from_salts(f"NaCl {c} mM") for c in (1, 3, 10)]
    jv = np.linspace(1e-6, 2e-5, 6)  # 3.6–72 LMH
    full = solve(feeds, jv, n_cells=80)
    single = solve(feeds, jv, pore="single_element")
    assert single.converged.all() and single.info["n_cells"] == 1
    assert np.abs(single.rejection - full.rejection).max() <= 1e-3


def test_single_element_failures_at_high_flux_with_divalent_ions_are_flagged_not_answered():
    jv = np.geomspace(1e-6, 3e-4, 8)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        single = solve(ions.Feed.from_salts("MgSO4 10 mM"), jv, pore="single_element")
    full = solve(ions.Feed.from_salts("MgSO4 10 mM"), jv)
    assert full.converged.all()
    failed = ~single.converged[0]
    assert failed.any() and failed[-1] and not failed[0]  # the high-flux end fails, the low-flux end does not
    assert np.isnan(single.permeate[0, failed]).all() and np.isfinite(single.permeate[0, ~failed]).all()
    assert single.info["residual"][0, ~failed].max() < 1e-10
    z = ions.charges(single.species)
    ok = single.permeate[0, ~failed]
    np.testing.assert_array_less(np.abs(ok @ z) / (ok @ np.abs(z)), 1e-9)


def test_unknown_pore_model_is_named():
    with pytest.raises(ValueError, match="nope"):
        solve(FEEDS[0], 1e-5, pore="nope")


def test_single_element_departure_is_small_at_low_peclet_and_grows_with_flux():
    fluxes = np.geomspace(1e-6, 3e-4, 6)
    nacl = dspmde.single_element_departure([ions.Feed.from_salts("NaCl 10 mM")], fluxes, NF270, n_cells=40)
    summary = nacl.summary(below_m_s=3e-5)
    assert summary["max |ΔR| at low flux"] < 1e-3 and summary["single-element failures"] == 0
    assert np.isnan(summary["lowest failing flux (m/s)"])
    assert nacl.dR[0, 0] < nacl.dR[0, -1]  # the linearised element departs as the cell Péclet number grows
    full = solve([ions.Feed.from_salts("NaCl 10 mM")], fluxes, membrane=NF270, n_cells=40)
    single = solve([ions.Feed.from_salts("NaCl 10 mM")], fluxes, membrane=NF270, pore="single_element")
    assert nacl.dR == pytest.approx(np.abs(single.rejection - full.rejection).max(-1))
