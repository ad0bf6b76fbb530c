"""nanoutils.sampling: Sobol compositions, flux grid, the DSPM-DE labelling call."""

import sys
import types

import numpy as np
import pytest

import nanoutils
from nanoutils import ions, models, sampling, training, units

N = 4000


@pytest.fixture(scope="module")
def comp():
    return sampling.sobol_compositions(N, seed=3)


def test_compositions_are_exactly_electroneutral(comp):
    z = ions.charges(comp.species)
    c = comp.concentration
    assert np.max(np.abs(c @ z) / (np.abs(z) * c).sum(1)) <= 1e-12


def test_compositions_within_bounds_and_masked(comp):
    c, m = comp.concentration, comp.mask
    assert np.all(c[~m] == 0)
    assert c[m].min() >= 0.1 and c[m].max() <= 1000.0
    z = ions.charges(comp.species)
    assert np.all((m & (z > 0)).any(1)) and np.all((m & (z < 0)).any(1))
    k = m.sum(1)
    assert k.min() == 2 and k.max() == len(comp.species)
    assert len(comp.feeds()) == N  # every composition is a valid Feed (neutral within 1e-6)


def test_each_species_is_covered_over_the_log_range(comp):
    for j, name in enumerate(comp.species):
        present = comp.mask[:, j]
        assert present.mean() > 0.4, name
        logc = np.log10(comp.concentration[present, j])
        counts, _ = np.histogram(logc, bins=4, range=(-1, 3))
        assert counts.min() > 0.4 * counts.mean(), (name, counts)  # roughly log-uniform, no empty decade


def test_deterministic_for_a_seed():
    a, b = sampling.sobol_compositions(100, seed=5), sampling.sobol_compositions(100, seed=5)
    c = sampling.sobol_compositions(100, seed=6)
    np.testing.assert_array_equal(a.concentration, b.concentration)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.concentration, c.concentration)


def test_subset_of_species_and_sizes():
    comp = sampling.sobol_compositions(50, seed=0, species=["Na", "Cl-", "SO4 2-"], min_species=3, c_min=1, c_max=10)
    assert comp.species == ("Na+", "Cl-", "SO4-2") and comp.mask.all()
    assert comp.concentration.min() >= 1 and comp.concentration.max() <= 10


def test_extreme_bounds_stay_feasible():
    # a narrow band forces the cap/floor step on most samples
    comp = sampling.sobol_compositions(500, seed=1, c_min=10.0, c_max=80.0)
    z = ions.charges(comp.species)
    c, m = comp.concentration, comp.mask
    assert c[m].min() >= 10.0 and c[m].max() <= 80.0
    assert np.max(np.abs(c @ z) / (np.abs(z) * c).sum(1)) <= 1e-12


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n=0), "≥ 1"),
        (dict(n=5, c_min=10, c_max=1), "c_min"),
        (dict(n=5, species=["Na+", "K+"]), "cation and one anion"),
        (dict(n=5, species=["Na+", "Xx-"]), "Xx-"),
        (dict(n=5, min_species=1), "min_species"),
        (dict(n=5, c_min=10.0, c_max=70.0), "cannot be made electroneutral"),
    ],
)
def test_bad_sampling_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sampling.sobol_compositions(**kwargs)


def test_flux_grid_units_and_errors():
    grid = sampling.flux_grid(8)
    assert grid[0] == pytest.approx(6e-5 / 8) and grid[-1] == pytest.approx(6e-5)
    assert units.m_s_to_lmh(grid[-1]) == pytest.approx(216.0)
    assert sampling.J_MAX_M_S == models.FLUX_SCALE_M_S  # the networks' τ = Jv / scale ends at 1 on the grid
    assert sampling.flux_grid(4, 2e-5, include_zero=True)[0] == 0.0
    with pytest.raises(ValueError, match="LMH"):
        sampling.flux_grid(8, 100.0)
    with pytest.raises(ValueError):
        sampling.flux_grid(0)


def test_label_with_dspmde_passes_through_and_checks_shapes(monkeypatch):
    """A stand-in solver (test double, not physics) checks the call contract and the drop-and-count path."""
    comp = sampling.sobol_compositions(4, seed=0)
    fluxes = sampling.flux_grid(3)
    seen = {}

    def solve(conc, flux, *, species, membrane=None):
        seen.update(conc=conc, flux=flux, species=species, membrane=membrane)
        converged = np.ones((len(conc), len(flux)), bool)
        converged[0, 1] = False
        return types.SimpleNamespace(permeate=np.repeat(conc[:, None], len(flux), 1) * 0.5, converged=converged)

    fake = types.SimpleNamespace(solve=solve)
    monkeypatch.setitem(sys.modules, "nanoutils.dspmde", fake)
    monkeypatch.setattr(nanoutils, "dspmde", fake, raising=False)
    permeate, converged = sampling.label_with_dspmde(comp, fluxes, membrane="m")
    assert seen["species"] == comp.species and seen["membrane"] == "m"
    np.testing.assert_array_equal(seen["conc"], comp.concentration)
    assert permeate.shape == (4, 3, 12) and converged.sum() == 11
    data = training.TransportData.from_labels(comp.concentration, comp.mask, fluxes, permeate, converged, comp.species)
    assert data.metadata["n_points_unconverged"] == 1 and not data.flux_mask[0, 1]

    fake.solve = lambda conc, flux, **kw: types.SimpleNamespace(
        permeate=np.zeros((1, 1, 12)), converged=np.ones((1, 1))
    )
    with pytest.raises(RuntimeError, match="shapes"):
        sampling.label_with_dspmde(comp, fluxes)


def test_random_mixtures_are_electroneutral_with_the_asked_number_of_ions():
    mix = sampling.random_mixtures(200, np.random.default_rng(4), n_ions=(3, 5))
    z = ions.charges(mix.species)
    c = mix.concentration
    assert np.abs(c @ z).max() < 1e-9 * (np.abs(z) * c).sum(1).max()
    k = mix.mask.sum(1)
    assert k.min() == 3 and k.max() == 5
    assert (c[mix.mask] >= sampling.C_MIN_MOL_M3).all() and ((c > 0) == mix.mask).all()
    assert ((c > 0) & (z > 0)).any(1).all() and ((c > 0) & (z < 0)).any(1).all()
    every = sampling.random_mixtures(3, np.random.default_rng(0), ["Na+", "Mg2+", "Cl-", "SO4-2"])
    assert every.mask.all() and every.species == ("Na+", "Mg2+", "Cl-", "SO4-2")
    again = sampling.random_mixtures(3, np.random.default_rng(0), ["Na+", "Mg2+", "Cl-", "SO4-2"])
    assert np.array_equal(every.concentration, again.concentration)
    with pytest.raises(ValueError, match="anion"):
        sampling.random_mixtures(2, np.random.default_rng(0), ["Na+", "K+"])
    with pytest.raises(ValueError, match="n_ions"):
        sampling.random_mixtures(2, np.random.default_rng(0), n_ions=(1, 3))
