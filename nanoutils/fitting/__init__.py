"""Fit the DSPM-DE membrane Z = {r_p, Δx_e, ε_p, X_d} to measured rejections (paper eq. 11, Table 2).

    arg min_Z  Σ_i Σ_j [R_mod_ij(Z) − R_exp_ij]² / σ_ij²                        (eq. 11)

over every measured quantity i (ion or salt) and flux point j, by simulated annealing
(``scipy.optimize.dual_annealing``, no local search) followed by Nelder–Mead, both in a unit
box mapped to physical bounds (log scale for r_p, Δx_e and ε_p; linear for the signed X_d).
Residuals come from the data layer (:meth:`MeasuredArrays.normalized_residuals`); every
objective call solves all feeds with the batched DSPM-DE (one call per group of feeds that share
temperature and film). Intrinsic feeds are compared at the membrane surface (no film); observed
feeds need the film's mass-transfer coefficient in the column ``x_k_film_m_s`` (m/s).

Beyond Z, :func:`fit` can fit a composition-dependent charge (:class:`nanoutils.dspmde.ChargeIsotherm`,
chosen by name): ``isotherm="freundlich"`` adds the exponent n (linear), ``isotherm="langmuir"`` the
site density Γ and a binding constant K_i per ion of ``binding_ions`` (both log scale); the
``temperature_model`` is passed to :func:`nanoutils.dspmde.solve`. :class:`Spec` names the variant,
:class:`Model` is the fitted DSPM-DE (``FitResult.model``) that every function here accepts.

>>> from nanoutils import fitting, measurements
>>> data = measurements.load_dataset("nf270_fdl2021")
>>> result = fitting.fit(data, anneal_maxiter=10, nm_maxiter=100)  # doctest: +SKIP
>>> result.table()                                                                            # doctest: +SKIP
>>> fitting.fit(measurements.load_dataset("nf270_fdl2021"), isotherm="langmuir", binding_ions=("Mg2+",),
...             temperature_model="stokes_einstein").model                                   # doctest: +SKIP

``partition_ions`` adds a per-ion partition energy ΔW (k_B T, "dW[ion]", added to the Born term) with a
Gaussian prior toward 0 as extra residuals; :func:`laplace_ensemble` and :func:`multistart` turn a fit
into an ensemble of models whose spread says what the data do not pin down.
"""

from ._fit import LOCAL_METHODS as LOCAL_METHODS
from ._fit import FitResult as FitResult
from ._fit import fit as fit
from ._fit import table2 as table2
from ._fit import uncertainty as uncertainty
from ._gradient import fit_gradient as fit_gradient
from ._objective import Objective as Objective
from ._objective import performance as performance
from ._objective import prediction_frame as prediction_frame
from ._objective import predictions as predictions
from ._posterior import delta_chi2 as delta_chi2
from ._posterior import fit_draws as fit_draws
from ._posterior import laplace_draws as laplace_draws
from ._posterior import laplace_ensemble as laplace_ensemble
from ._posterior import multistart as multistart
from ._space import BOUNDS as BOUNDS
from ._space import FILM_COLUMN as FILM_COLUMN
from ._space import ISOTHERM_BOUNDS as ISOTHERM_BOUNDS
from ._space import ISOTHERM_START as ISOTHERM_START
from ._space import LOG_SCALE as LOG_SCALE
from ._space import PAPER_TABLE2 as PAPER_TABLE2
from ._space import PARAMETERS as PARAMETERS
from ._space import PENALTY_R as PENALTY_R
from ._space import UNITS as UNITS
from ._space import FitError as FitError
from ._space import Model as Model
from ._space import Space as Space
from ._space import Spec as Spec
from ._space import check_bounds as check_bounds
from ._space import membrane as membrane

__all__ = [
    "BOUNDS",
    "FILM_COLUMN",
    "ISOTHERM_BOUNDS",
    "ISOTHERM_START",
    "LOCAL_METHODS",
    "LOG_SCALE",
    "PAPER_TABLE2",
    "PARAMETERS",
    "PENALTY_R",
    "UNITS",
    "FitError",
    "FitResult",
    "Model",
    "Objective",
    "Space",
    "Spec",
    "check_bounds",
    "delta_chi2",
    "fit",
    "fit_draws",
    "fit_gradient",
    "laplace_draws",
    "laplace_ensemble",
    "membrane",
    "multistart",
    "performance",
    "prediction_frame",
    "predictions",
    "table2",
    "uncertainty",
]
