"""Physical constants (CODATA 2018 exact or recommended values), SI units."""
FARADAY = 96485.33212  # C/mol
GAS_CONSTANT = 8.314462618  # J/(mol K)
BOLTZMANN = 1.380649e-23  # J/K
ELEMENTARY_CHARGE = 1.602176634e-19  # C
VACUUM_PERMITTIVITY = 8.8541878128e-12  # F/m
EPS_WATER_25C = 78.54  # relative permittivity of bulk water at 25 °C


def thermal_voltage(temperature: float) -> float:
    """RT/F in volts at ``temperature`` (K): converts the dimensionless potential Fψ/RT to volts."""
    return GAS_CONSTANT * temperature / FARADAY
