"""nanoutils.constants: the derived constants agree with their definitions."""

import pytest

from nanoutils import constants as C


def test_faraday_and_gas_constant_are_avogadro_times_charge_and_boltzmann():
    assert C.FARADAY == pytest.approx(C.AVOGADRO * C.ELEMENTARY_CHARGE, rel=1e-10)
    assert C.GAS_CONSTANT == pytest.approx(C.AVOGADRO * C.BOLTZMANN, rel=1e-10)


def test_thermal_voltage_at_25_C_is_25_7_mV():
    assert C.thermal_voltage(298.15) == pytest.approx(0.0256926, rel=1e-5)
    assert C.thermal_voltage(298.15) == pytest.approx(C.BOLTZMANN * 298.15 / C.ELEMENTARY_CHARGE, rel=1e-10)
