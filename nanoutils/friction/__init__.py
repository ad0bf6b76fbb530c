"""Solution-friction (SF) baseline (Wang et al. 2021; Biesheuvel et al., arXiv 2110.07506), a Table 1 row.

Per-ion friction with water and membrane, Donnan + common partition factor at both faces, solved on the
DSPM-DE chain (equations in ``_model``); d friction ratios + X, ε_w, L, Φ regressed by eq. 11 (``_fit``, through
:class:`nanoutils.fitting.Objective`, which — like
:func:`nanoutils.fitting.predictions` — takes an SF model as it takes a DSPM-DE membrane).

>>> from nanoutils import friction, measurements
>>> train, test = measurements.split_by_feed(measurements.load_dataset("nf270_fdl2021"), seed=0)
>>> sf = friction.fit(train)                                                       # doctest: +SKIP
>>> sf.model.solve(test.arrays().feeds, [5e-6, 2e-5]).rejection                   # doctest: +SKIP
"""

from ._fit import BOUNDS as BOUNDS
from ._fit import SFFit as SFFit
from ._fit import fit as fit
from ._model import MEMBRANE_PARAMETERS as MEMBRANE_PARAMETERS
from ._model import SFError as SFError
from ._model import SFModel as SFModel

__all__ = ["BOUNDS", "MEMBRANE_PARAMETERS", "SFError", "SFFit", "SFModel", "fit"]
