"""Unit conversions at the edges."""

import numpy as np
import pytest

from nanoutils import units


def test_flux_round_trip_and_reference_value():
    assert units.lmh_to_m_s(3.6) == pytest.approx(1e-6)
    x = np.array([0.0, 1.0, 250.0])
    np.testing.assert_allclose(units.m_s_to_lmh(units.lmh_to_m_s(x)), x)


def test_concentration_units():
    assert units.conc_to_si(10, "mM") == 10.0
    assert units.conc_to_si(0.01, "mol/L") == pytest.approx(10.0)
    assert units.conc_from_si(10.0, "M") == pytest.approx(0.01)
    assert units.mass_conc_to_mol_m3(5.844, 0.05844) == pytest.approx(100.0)
    assert units.mol_m3_to_mass_conc(100.0, 0.05844) == pytest.approx(5.844)


def test_lengths_and_temperature():
    assert units.length_to_m(0.51, "nm") == pytest.approx(0.51e-9)
    assert units.length_from_m(1.27e-6, "µm") == pytest.approx(1.27)
    assert units.celsius_to_kelvin(25.0) == pytest.approx(298.15)


def test_unknown_unit_names_itself():
    with pytest.raises(ValueError, match="furlong"):
        units.length_to_m(1.0, "furlong")
