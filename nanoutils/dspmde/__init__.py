"""DSPM-DE: the Donnan–Steric Pore Model with Dielectric Exclusion (paper Appendix A.2).

>>> from nanoutils import ions, dspmde
>>> feed = ions.Feed.from_salts("NaCl 10 mM")
>>> result = dspmde.solve([feed], [1e-6, 1e-5], membrane=dspmde.Membrane.nf270())
>>> result.rejection.shape
(1, 2, 2)
"""

from ..constants import thermal_voltage as thermal_voltage
from ._activity import ACTIVITY as ACTIVITY
from ._activity import ActivityModel as ActivityModel
from ._departure import Departure as Departure
from ._departure import single_element_departure as single_element_departure
from ._film import SHERWOOD as SHERWOOD
from ._film import Film as Film
from ._film import FilmError as FilmError
from ._grad import Sensitivity as Sensitivity
from ._grad import sensitivities as sensitivities
from ._hindrance import HINDRANCE as HINDRANCE
from ._hindrance import hindrance as hindrance
from ._hindrance import steric_partition as steric_partition
from ._image import image_log_partition as image_log_partition
from ._isotherm import ISOTHERMS as ISOTHERMS
from ._isotherm import ChargeIsotherm as ChargeIsotherm
from ._isotherm import IsothermError as IsothermError
from ._membrane import Membrane as Membrane
from ._membrane import MembraneError as MembraneError
from ._partition import MECHANISMS as MECHANISMS
from ._partition import PartitionEnergyError as PartitionEnergyError
from ._partition import PoreIons as PoreIons
from ._partition import born_log_partition as born_log_partition
from ._partition import donnan_potential as donnan_potential
from ._partition import partition_energies as partition_energies
from ._partition import partition_terms as partition_terms
from ._partition import pore_ions as pore_ions
from ._reference import solve_reference as solve_reference
from ._result import Profiles as Profiles
from ._result import Result as Result
from ._setup import PORE_MODELS as PORE_MODELS
from ._setup import FluxError as FluxError
from ._setup import as_concentrations as as_concentrations
from ._setup import as_fluxes as as_fluxes
from ._setup import check_temperature as check_temperature
from ._solver import DEFAULT_CELLS as DEFAULT_CELLS
from ._solver import ConvergenceWarning as ConvergenceWarning
from ._solver import solve as solve
from ._solver import solve_transport as solve_transport
from ._temperature import TEMPERATURE_MODELS as TEMPERATURE_MODELS
from ._temperature import TemperatureRangeError as TemperatureRangeError
from ._temperature import water_viscosity as water_viscosity


def __getattr__(name: str):
    """``solve_torch`` (the solver as a differentiable torch function) is imported on first use: it needs torch."""
    if name == "solve_torch":
        from ._torch import solve_torch

        return solve_torch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTIVITY",
    "DEFAULT_CELLS",
    "HINDRANCE",
    "ISOTHERMS",
    "MECHANISMS",
    "PORE_MODELS",
    "SHERWOOD",
    "TEMPERATURE_MODELS",
    "ActivityModel",
    "as_concentrations",
    "as_fluxes",
    "check_temperature",
    "ChargeIsotherm",
    "ConvergenceWarning",
    "Departure",
    "Film",
    "FilmError",
    "FluxError",
    "IsothermError",
    "Membrane",
    "MembraneError",
    "PartitionEnergyError",
    "PoreIons",
    "Profiles",
    "Result",
    "TemperatureRangeError",
    "born_log_partition",
    "donnan_potential",
    "hindrance",
    "image_log_partition",
    "partition_energies",
    "partition_terms",
    "pore_ions",
    "single_element_departure",
    "solve",
    "solve_reference",
    "Sensitivity",
    "sensitivities",
    "solve_torch",
    "solve_transport",
    "steric_partition",
    "thermal_voltage",
    "water_viscosity",
]
