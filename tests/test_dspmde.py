"""DSPM-DE: physics limits, balances, closed forms, the two solvers against each other, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from problems import binary_salt_as_uncharged, uncharged_rejection

from nanoutils import ions, sampling
from nanoutils.dspmde import (
    Film,
    FilmError,
    FluxError,
    Membrane,
    MembraneError,
    donnan_potential,
    hindrance,
    pore_ions,
    solve,
    solve_reference,
)
from nanoutils.dspmde._partition import born_log_partition

NF270 = Membrane.nf270()
UNCHARGED = NF270.with_(X_d=0.0, eps_p=NF270.eps_b)
NACL = ions.Feed.from_salts("NaCl 10 mM")


# --- partitioning and hindrance -------------------------------------------------------------


@pytest.mark.parametrize("source, valid_up_to", [("bowen_welfoot_2002", 0.8), ("dechadilok_deen_2006", 0.95)])
def test_hindrance_limits(source, valid_up_to):
    lam = np.linspace(0.0, valid_up_to, 40)
    k_c, k_d = hindrance(lam, source)
    assert k_d[0] == pytest.approx(1.0) and k_c[0] == pytest.approx(1.0)
    assert np.all(np.diff(k_d) < 0) and np.all(k_d > 0)
    assert np.all(hindrance([1.0, 1.5], source)[1] == 0.0)


def test_hindrance_sources_are_close_for_small_ions():
    lam = np.linspace(0.05, 0.5, 10)
    (kc1, kd1), (kc2, kd2) = hindrance(lam, "bowen_welfoot_2002"), hindrance(lam, "dechadilok_deen_2006")
    assert np.abs(kd1 - kd2).max() < 0.08 and np.abs(kc1 - kc2).max() < 0.15


def test_born_exclusion_scales_with_charge_squared_over_radius_and_vanishes_without_contrast():
    ln_phi = born_log_partition(np.array([1.0, 2.0, 1.0]), np.array([2e-10, 2e-10, 4e-10]), 40.0, 78.54, 298.15)
    assert ln_phi[1] / ln_phi[0] == pytest.approx(4.0) and ln_phi[2] / ln_phi[0] == pytest.approx(0.5)
    assert born_log_partition(np.array([2.0]), np.array([2e-10]), 78.54, 78.54, 298.15)[0] == 0.0


def test_donnan_potential_matches_symmetric_closed_form():
    c, x = np.array([[10.0, 10.0], [1000.0, 1000.0]]), -51.23
    psi = donnan_potential(c, np.array([1.0, -1.0]), np.zeros(2), x)
    np.testing.assert_allclose(psi, np.arcsinh(x / (2 * c[:, 0])), rtol=1e-12)


# --- limits of the full model ---------------------------------------------------------------


def test_zero_flux_gives_zero_rejection():
    """R = 0 at J_v = 0, and R → 0 linearly in J_v (strong exclusion makes the approach slow)."""
    feed = ions.Feed.from_salts("NaCl 10 mM + MgSO4 5 mM")
    r = solve([feed], [0.0, 1e-11, 1e-12], membrane=NF270).rejection[0]
    assert np.all(r[0] == 0.0)
    np.testing.assert_allclose(r[1] / r[2], 10.0, rtol=0.02)
    assert np.abs(r[2]).max() < 2e-3


def test_uncharged_limit_matches_hindered_transport_closed_form():
    phi, k_c, kd_d = binary_salt_as_uncharged("Na+", "Cl-", UNCHARGED)
    jv = np.array([1e-6, 1e-5, 1e-4, 1e-3])
    exact = uncharged_rejection(phi, k_c, kd_d, jv, UNCHARGED.dx_e)
    r = solve([NACL], jv, membrane=UNCHARGED, n_cells=80)
    np.testing.assert_allclose(r.rejection[0], np.repeat(exact[:, None], 2, 1), atol=2e-6)


def test_high_flux_approaches_one_minus_phi_kc():
    phi, k_c, _ = binary_salt_as_uncharged("Na+", "Cl-", UNCHARGED)
    r = solve([NACL], [1e-2], membrane=UNCHARGED)
    np.testing.assert_allclose(r.rejection[0, 0], 1 - phi * k_c, atol=1e-6)


def test_mesh_refinement_converges_at_second_order():
    feed = ions.Feed.from_salts("NaCl 20 mM + Na2SO4 10 mM")
    rs = [solve([feed], [2e-5], membrane=NF270, n_cells=n).rejection[0, 0] for n in (10, 20, 40, 160)]
    errors = [np.abs(r - rs[-1]).max() for r in rs[:-1]]
    assert errors[0] > errors[1] > errors[2]
    assert 3.0 < errors[0] / errors[1] < 5.0 and errors[2] < 1e-3


def test_ions_larger_than_the_pore_are_fully_rejected():
    feed = ions.Feed.from_salts("NaCl 10 mM + Na2SO4 5 mM")
    r = solve([feed], [1e-5, 3e-5], membrane=NF270.with_(r_p=0.22e-9))
    so4 = r.species.index("SO4-2")
    assert np.all(r.rejection[0, :, so4] == 1.0) and r.converged.all()
    assert np.all(np.isfinite(r.rejection)) and np.all(r.rejection[0, :, r.species.index("Cl-")] < 1.0)
    salt = solve([ions.Feed.from_salts("MgSO4 5 mM")], [1e-5], membrane=NF270.with_(r_p=0.2e-9))
    assert np.all(salt.rejection == 1.0)


def test_nacl_rejection_rises_with_flux_and_falls_with_concentration():
    feeds = [ions.Feed.from_salts(f"NaCl {c} mM") for c in (1, 10, 100, 1000)]
    jv = np.linspace(1e-6, 5e-5, 8)
    r = solve(feeds, jv, membrane=NF270).rejection[..., 0]
    assert np.all(np.diff(r, axis=1) > 0) and np.all(np.diff(r, axis=0) < 0)


def test_chloride_rejection_turns_negative_next_to_sulfate():
    feed = ions.Feed.from_salts("Na2SO4 10 mM + NaCl 1 mM")
    r = solve([feed], [1e-6, 3e-5], membrane=NF270).rejection[0]
    cl, so4 = 1, 2  # species order: Na+, Cl-, SO4-2
    assert r[0, cl] < -0.3 and r[0, so4] > 0.99  # Cl⁻ is pushed through to accompany Na⁺
    assert r[1, cl] > 0  # at high flux convection-limited rejection wins


def test_permeate_is_electroneutral_and_pore_satisfies_its_equations():
    mix = sampling.random_mixtures(40, np.random.default_rng(3), n_ions=(3, 6))
    c, names = mix.concentration, mix.species
    r = solve(c, np.geomspace(1e-7, 1e-4, 5), species=names, membrane=NF270, profiles=True)
    assert r.converged.all() and r.info["residual"].max() < 1e-10
    z = ions.charges(names)
    np.testing.assert_array_less(np.abs(r.permeate @ z) / (r.permeate @ np.abs(z)), 1e-9)
    pore_charge = r.profiles.concentration @ z + NF270.X_d
    np.testing.assert_array_less(np.abs(pore_charge), 1e-9 * (np.abs(NF270.X_d) + r.feed.sum(1)).max())
    # entrance partitioning (eq. 8) with the Donnan potential read off the profile
    p = pore_ions(names, NF270, 298.15)
    psi0 = r.profiles.potential[..., 0] / (8.314462618 * 298.15 / 96485.33212)
    expected = r.feed[:, None] * np.exp(p.ln_phi - z * psi0[..., None])
    np.testing.assert_allclose(r.profiles.concentration[..., 0, :], expected, rtol=1e-9)


# --- film -----------------------------------------------------------------------------------


def test_film_polarises_and_vanishes_for_fast_mass_transfer():
    feed = ions.Feed.from_salts("NaCl 10 mM + MgSO4 5 mM")
    bare = solve([feed], [2e-5], membrane=NF270)
    polarised = solve([feed], [2e-5], membrane=NF270, film=Film(2e-5))
    assert np.all(polarised.membrane_surface > feed.vector(bare.species))
    assert np.all(polarised.rejection[0, 0] < bare.rejection[0, 0])  # observed < intrinsic
    fast = solve([feed], [2e-5], membrane=NF270, film=Film(1e3))
    np.testing.assert_allclose(fast.permeate, bare.permeate, rtol=1e-6)


def test_sherwood_film_scales_with_diffusivity_to_two_thirds():
    film = Film.sherwood(["Na+", "SO4-2"], velocity=0.1, hydraulic_diameter=1e-3, channel_length=0.1)
    k = film.coefficients(["Na+", "SO4-2"])
    d = np.array([ions.get("Na+").diffusivity, ions.get("SO4-2").diffusivity])
    assert k[0] / k[1] == pytest.approx((d[0] / d[1]) ** (2 / 3))


# --- solvers agree; batches mask absent ions ------------------------------------------------


def test_main_and_reference_solvers_agree_on_random_mixtures():
    mix = sampling.random_mixtures(6, np.random.default_rng(11), n_ions=(3, 6))
    c, names = mix.concentration, mix.species
    jv = np.array([3e-6, 2e-5])
    main = solve(c, jv, species=names, membrane=NF270, n_cells=10)
    for i in range(len(c)):
        for j, flux in enumerate(jv):
            ref = solve_reference(c[i], flux, species=names, membrane=NF270, n_cells=10)
            assert ref.converged.all()
            present = c[i] > 0
            np.testing.assert_allclose(ref.permeate[0, 0, present], main.permeate[i, j, present], rtol=1e-6)


def test_reference_agrees_with_a_film():
    feed = ions.Feed.from_salts("NaCl 10 mM + MgSO4 5 mM")
    ref = solve_reference(feed, 2e-5, membrane=NF270, film=Film(3e-5), n_cells=10)
    main = solve(feed, 2e-5, membrane=NF270, film=Film(3e-5), n_cells=10)
    np.testing.assert_allclose(ref.permeate, main.permeate, rtol=1e-6)


def test_dense_batch_equals_feed_by_feed():
    mix = sampling.random_mixtures(4, np.random.default_rng(5), n_ions=(3, 6))
    c, names = mix.concentration, mix.species
    batch = solve(c, [1e-5], species=names)
    for i in range(len(c)):
        present = tuple(n for n, ci in zip(names, c[i], strict=True) if ci > 0)
        one = solve([ions.Feed({n: ci for n, ci in zip(names, c[i], strict=True) if ci > 0})], [1e-5])
        np.testing.assert_allclose(batch.permeate[i, 0, c[i] > 0], one.permeate[0, 0], rtol=1e-9)
        assert one.species == present


def test_activity_hook():
    feed = ions.Feed.from_salts("NaCl 50 mM + MgSO4 20 mM")
    ideal = solve(feed, 1e-5)
    assert np.array_equal(solve(feed, 1e-5, activity=lambda c, z: np.zeros_like(c)).permeate, ideal.permeate)
    davies = solve(feed, 1e-5, activity="davies")
    assert davies.converged.all() and np.abs(davies.rejection - ideal.rejection).max() > 1e-3


def test_to_frame_is_tidy():
    frame = solve([NACL, ions.Feed.from_salts("MgSO4 5 mM")], [1e-6, 1e-5]).to_frame()
    assert len(frame) == 2 * 2 * 2
    row = frame[(frame.feed_id == 1) & (frame.ion == "Mg2+")].iloc[0]
    assert row.c_feed == 5.0 and row.R == pytest.approx(1 - row.c_perm / 5.0)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("flux", [-1e-6, float("nan"), float("inf")])
def test_bad_flux_is_named(flux):
    with pytest.raises(FluxError, match=str(flux).replace("+", "")):
        solve([NACL], [1e-6, flux])


def test_non_neutral_dense_feed_is_named():
    with pytest.raises(ions.ElectroneutralityError, match="feed 1"):
        solve(np.array([[10.0, 10.0], [10.0, 5.0]]), 1e-5, species=["Na+", "Cl-"])
    with pytest.raises(ions.ConcentrationValueError, match="Cl-"):
        solve(np.array([[10.0, -10.0]]), 1e-5, species=["Na+", "Cl-"])


@pytest.mark.parametrize(
    "field, value", [("r_p", -1e-9), ("dx_e", 0.0), ("eps_p", float("nan")), ("hindrance", "nope")]
)
def test_bad_membrane_is_named(field, value):
    with pytest.raises(MembraneError, match=field):
        NF270.with_(**{field: value})


def test_bad_film_and_temperature():
    with pytest.raises(FilmError, match="0"):
        Film(0.0)
    with pytest.raises(ValueError, match="-5"):
        solve([NACL], 1e-5, temperature=-5.0)
    with pytest.raises(ValueError, match="2 fluxes"):
        solve_reference(NACL, [1e-5, 2e-5])


def test_partition_terms_add_up_and_keep_the_pore_electroneutral():
    from nanoutils.dspmde import partition_terms, steric_partition

    species = ("Na+", "Mg2+", "Cl-", "SO4-2")
    c = np.array([10.0, 5.0, 10.0, 5.0])
    z = np.array([ions.get(s).z for s in species])
    r_s = np.array([ions.get(s).stokes_radius for s in species])
    for mem in (Membrane.nf270(), Membrane.nf270(X_d=80.0), Membrane.nf270(X_d=0.0)):
        t = partition_terms(c, species, mem)
        np.testing.assert_allclose(t["steric"], np.log(steric_partition(r_s / mem.r_p)))
        np.testing.assert_allclose(t["total"], t["steric"] + t["dielectric"] + t["image"] + t["Donnan"])
        assert np.all(t["image"] == 0) and np.all(t["dielectric"] < 0)
        assert abs(z @ (c * np.exp(t["total"])) + mem.X_d) < 1e-9 * (np.abs(z) @ c)  # Σ z c_pore + X_d = 0
    # a negative membrane draws cations in (Donnan > 0) and pushes anions out, the reverse for a positive one
    assert np.all(np.sign(partition_terms(c, species, Membrane.nf270())["Donnan"]) == np.sign(z))
    assert np.all(np.sign(partition_terms(c, species, Membrane.nf270(X_d=80.0))["Donnan"]) == -np.sign(z))
    with_image = partition_terms(c, species, Membrane.nf270(), image_forces=True)
    assert np.all(with_image["image"] < 0)  # ε_m < ε_p: every ion is pushed away from the pore wall
