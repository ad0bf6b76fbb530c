"""Solution–diffusion–electromigration model (SDEM) of nanofiltration in electrolyte mixtures.

After Yaroshchuk and co-workers (e.g. M. Fernández de Labastida and A. Yaroshchuk, *Membranes* 11
(2021) 272, the source of the real NF270 data, and the SDEM papers it builds on). Inside the active
layer, in "virtual" concentrations c_i (those of a solution in equilibrium with the local membrane
phase), with ξ = x/L ∈ [0, 1] and ψ = Fφ/RT:

    j_i = −P_i (dc_i/dξ + z_i c_i dψ/dξ)            (no convection; P_i ion permeance, m/s)
    Σ_i z_i c_i = 0                                  (electroneutral virtual concentrations)
    Σ_i z_i j_i = 0                                  (zero electric current)
    c_i(0) = c_f,i,  c_i(1) = c_p,i,  j_i = J_v c_p,i

(c_f at the membrane surface: the intrinsic feed, or the end of a film layer). Eliminating the field
for a single salt M_ν₊X_ν₋ (charges z₊ > 0 > z₋) makes the equivalent concentration linear in ξ and

    R = J_v / (J_v + P_s),   1/P_s = (z₊/P₋ + |z₋|/P₊) / (z₊ + |z₋|)         (:func:`salt_permeance`)

For a trace ion t (charge z_t, permeance P_t) in that salt the field is z_t dψ/dξ = −k R_s/(1 − R_s ξ)
with k = z_t P_s (1/P₊ − 1/P₋)/(z₊ − z₋) (R_s the salt's rejection), and

    c_p,t / c_f,t = 1 / [(1 − R_s)^k + J_v (1 − (1 − R_s)^{k+1}) / (R_s P_t (k + 1))],

so a trace ion that moves with the field (k > 0: a trace cation when the dominant cation is the slow
ion) is enriched in the permeate — negative rejection — at low and moderate flux. Mixtures are
solved numerically: the layer is discretised into ``n_cells`` exponentially fitted
(Scharfetter–Gummel) cells and all ions, the potential and the permeate are found together by
Newton's method with continuation in J_v (the DSPM-DE chain with K_c = 0, no partitioning and no
fixed charge), N feeds × M fluxes in one call.

Feed dependence (optional, stated): P_i = P_i,ref (c_eq/c_ref)^a with c_eq = ½ Σ |z_i| c_f,i the
feed's equivalent concentration and one exponent a for all ions (a = 0: feed-independent
permeances, the transfer form). An ion without a permeance makes its feed unpredictable (NaN and
``converged`` False, flagged in ``Result.info``) unless ``fallback="diffusivity"`` scales its
permeance from its bulk diffusivity by the fitted P/D of ions of the same charge.

>>> from nanoutils import measurements, sdem
>>> fitted = sdem.fit(measurements.load_dataset("nf270_fdl2021"))          # doctest: +SKIP
>>> fitted.table()                                                  # doctest: +SKIP
>>> fitted.model.solve([{"Na+": 10.0, "Cl-": 10.0}], [1e-5]).rejection  # doctest: +SKIP
"""

from ._fit import BOUNDS as BOUNDS
from ._fit import SDEMFit as SDEMFit
from ._fit import fit as fit
from ._model import C_REF as C_REF
from ._model import DEFAULT_CELLS as DEFAULT_CELLS
from ._model import FALLBACKS as FALLBACKS
from ._model import MissingPermeanceWarning as MissingPermeanceWarning
from ._model import SDEMError as SDEMError
from ._model import SDEMModel as SDEMModel
from ._model import equivalent_concentration as equivalent_concentration
from ._model import salt_permeance as salt_permeance

__all__ = [
    "BOUNDS",
    "C_REF",
    "DEFAULT_CELLS",
    "FALLBACKS",
    "MissingPermeanceWarning",
    "SDEMError",
    "SDEMFit",
    "SDEMModel",
    "equivalent_concentration",
    "fit",
    "salt_permeance",
]
