"""The ion table and feed validation."""

import math

import numpy as np
import pytest

from nanoutils import ions

REQUIRED = ["Li+", "Na+", "K+", "NH4+", "Mg2+", "Ca2+", "Cl-", "SO4-2", "F-", "Br-", "NO3-", "HCO3-"]
K_B, ETA_25C, T_25C = 1.380649e-23, 0.8903e-3, 298.15


def test_table_has_required_ions_with_sources():
    table = ions.table()
    assert set(REQUIRED) <= set(table.index)
    for col in ("source_diffusivity", "source_stokes_radius", "source_molar_mass"):
        assert (table[col].str.len() > 10).all(), col


@pytest.mark.parametrize("name", REQUIRED)
def test_ion_properties_physically_sane(name):
    ion = ions.get(name)
    assert 0.1e-9 <= ion.stokes_radius <= 0.5e-9
    assert 0.5e-9 <= ion.diffusivity <= 3e-9
    assert 1e-3 < ion.molar_mass < 0.2
    # The charge number matches the name: Mg2+ → +2, SO4-2 → -2, Cl- → -1.
    sign = 1 if "+" in name else -1
    magnitude = 2 if "2" in name.replace("SO4", "").replace("NO3", "").replace("HCO3", "") else 1
    assert ion.z == sign * magnitude


def test_stokes_radius_is_stokes_einstein_of_diffusivity():
    for name in ions.species():
        ion = ions.get(name)
        r = K_B * T_25C / (6 * math.pi * ETA_25C * ion.diffusivity)
        assert ion.stokes_radius == pytest.approx(r, rel=1e-3), name


@pytest.mark.parametrize("alias, name", [("Na", "Na+"), ("so4 2-", "SO4-2"), ("Mg++", "Mg2+"), ("NH4", "NH4+")])
def test_aliases(alias, name):
    assert ions.canonical(alias) == name


def test_feed_from_salts_adds_shared_ions_and_orders_by_table():
    feed = ions.Feed.from_salts("NaCl 10 mM + Na2SO4 0.005 M + MgCl2 2 mmol/L")
    assert list(feed) == ["Na+", "Mg2+", "Cl-", "SO4-2"]
    assert feed["Na+"] == pytest.approx(20.0)
    assert feed["Cl-"] == pytest.approx(14.0)
    assert feed["SO4-2"] == pytest.approx(5.0)


def test_feed_from_salts_mass_units_and_parentheses():
    feed = ions.Feed.from_salts("NaCl 5.844 g/L + Mg(NO3)2 1 mM + (NH4)2SO4 500 µM")
    assert feed["Na+"] == pytest.approx(100.0, rel=1e-3)  # 5.844 g/L / 58.44 g/mol
    assert feed["NO3-"] == pytest.approx(2.0)
    assert feed["NH4+"] == pytest.approx(1.0)


def test_vector_and_stack():
    a = ions.Feed({"Na+": 1.0, "Cl-": 1.0})
    b = ions.Feed.from_salts("MgSO4 2 mM")
    conc, names = ions.stack([a, b])
    assert names == ("Na+", "Mg2+", "Cl-", "SO4-2")
    np.testing.assert_array_equal(conc, [[1, 0, 1, 0], [0, 2, 0, 2]])
    assert a.vector().shape == (len(ions.species()),)


def test_balanced_with_fixes_the_imbalance_exactly():
    feed = ions.Feed({"Na+": 10.0, "Cl-": 7.0, "SO4-2": 1.0}, rtol=1.0).balanced_with("Cl-")
    assert feed["Cl-"] == pytest.approx(8.0)
    assert ions.charges(feed) @ feed.vector(feed.ions) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "conc, error, fragments",
    [
        ({"Xx+": 1.0, "Cl-": 1.0}, ions.UnknownIonError, ["'Xx+'"]),
        ({"Na+": -1.0, "Cl-": 1.0}, ions.ConcentrationValueError, ["Na+", "negative", "-1.0"]),
        ({"Na+": float("nan"), "Cl-": 1.0}, ions.ConcentrationValueError, ["Na+", "nan"]),
        ({"Na+": 1.0, "Cl-": float("inf")}, ions.ConcentrationValueError, ["Cl-", "inf"]),
        ({"Na+": "abc", "Cl-": 1.0}, ions.ConcentrationValueError, ["Na+", "'abc'"]),
        ({"Na+": 10.0, "Cl-": 9.0}, ions.ElectroneutralityError, ["+1", "Na+: +10", "Cl-: -9"]),
        ({"Na": 1.0, "Na+": 1.0, "Cl-": 2.0}, ions.CompositionError, ["Na+", "twice"]),
        ({}, ions.CompositionError, ["empty"]),
    ],
)
def test_bad_feeds_raise_value_errors_naming_the_culprit(conc, error, fragments):
    with pytest.raises(error) as info:
        ions.Feed(conc)
    assert isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_neutrality_tolerance_is_relative_and_adjustable():
    ions.Feed({"Na+": 1000.0, "Cl-": 1000.0 * (1 + 1e-7)})  # within the default 1e-6
    with pytest.raises(ions.ElectroneutralityError):
        ions.Feed({"Na+": 1000.0, "Cl-": 1001.0})
    assert len(ions.Feed({"Na+": 1000.0, "Cl-": 1001.0}, rtol=1e-2)) == 2


@pytest.mark.parametrize(
    "text, error, fragment",
    [
        ("NaXy 10 mM", ions.UnknownIonError, "NaXy"),
        ("NaCl ten mM", ions.CompositionError, "NaCl ten mM"),
        ("NaCl 10 furlongs", ions.CompositionError, "furlongs"),
        ("NaCl -5 mM", ions.ConcentrationValueError, "NaCl"),
        ("Na2Cl 1 mM", ions.CompositionError, "not neutral"),
    ],
)
def test_bad_salt_strings(text, error, fragment):
    with pytest.raises(error, match=fragment):
        ions.Feed.from_salts(text)
