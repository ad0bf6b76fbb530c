"""The fitted parameters: names, units, bounds, the unit-box map the optimisers search, and the DSPM-DE
variant (:class:`Spec`) and model (:class:`Model`) they describe."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import dspmde, ions
from ..constants import EPS_WATER_25C

PARAMETERS = ("r_p", "dx_e", "eps_p", "X_d")
UNITS = {
    "r_p": ("nm", 1e9),
    "dx_e": ("µm", 1e6),
    "eps_p": ("–", 1.0),
    "X_d": ("mol/m³", 1.0),
    "n": ("–", 1.0),
    "sites": ("mol/m³", 1.0),
    "K": ("m³/mol", 1.0),
    "dW": ("kT", 1.0),
}
#: Physical bounds (SI): pores wider than the largest hydrated ion of the table but still NF; a
#: thickness from a thin active layer to a thick, tortuous one; ε_p between a strongly ordered
#: pore fluid and bulk water; charge from strongly negative to moderately positive.
BOUNDS: dict[str, tuple[float, float]] = {
    "r_p": (0.3e-9, 1.5e-9),
    "dx_e": (0.1e-6, 50e-6),
    "eps_p": (15.0, EPS_WATER_25C),
    "X_d": (-400.0, 200.0),
}
#: Charge-isotherm parameters (SI), fitted only with ``fit(isotherm=...)``: the Freundlich exponent n of
#: X = X_d (I_f/I_ref)^n, from a charge falling as 1/I_f to one growing as I_f; the Langmuir site
#: density Γ ("sites", mol/m³ of pore volume), from practically none to a few mol/L (the carboxyl
#: content of polyamide), and binding constants K ("K[Mg2+]", m³/mol), from K c = 10⁻³ at 10 mol/m³ of
#: the binding ion (no binding) to half-occupied sites at 0.01 mol/m³.
#: Ion-specific partition energies ΔW ("dW[Na+]", k_B T), fitted only with ``partition_ions``: ±8 k_B T
#: spans a 3000-fold change of the partition coefficient either way.
ISOTHERM_BOUNDS: dict[str, tuple[float, float]] = {
    "n": (-1.0, 1.0),
    "sites": (1e-2, 5e3),
    "K": (1e-4, 1e2),
    "dW": (-8.0, 8.0),
}
#: Start of the isotherm parameters when ``start`` gives Z only: constant charge (n = 0) or a moderate
#: binding (Γ = 20 mol/m³, K = 0.05 m³/mol: ≈ 10 mol/m³ of charge from 10 mM of a divalent ion).
#: ΔW starts at its prior mean, 0 (plain DSPM-DE).
ISOTHERM_START = {"n": 0.0, "sites": 20.0, "K": 0.05, "dW": 0.0}
LOG_SCALE = {"r_p": True, "dx_e": True, "eps_p": True, "X_d": False, "n": False, "sites": True, "K": True, "dW": False}
_LINEAR_SCALE = {"X_d": 100.0}  # θ = value / scale for the linear parameters (else 1)
#: Paper's Table 2 (NF270), SI: the fitted parameters of :meth:`nanoutils.dspmde.Membrane.nf270`.
PAPER_TABLE2 = {name: getattr(dspmde.Membrane.nf270(), name) for name in PARAMETERS}
#: A measurement whose case does not converge counts as a rejection error of this size (the
#: full span of physically seen rejections, −1 to 1), divided by its σ.
PENALTY_R = 2.0
FILM_COLUMN = "x_k_film_m_s"
_OVERHEAD_CASES = 20  # one extra solve call costs about as much as this many cases


class FitError(ValueError):
    """Bad input to a fit (inverted bounds, empty data, missing film coefficient…); names the culprit."""


def _family(name: str) -> str:
    """The parameter family of a name: "K" for the binding constants "K[ion]", "dW" for the partition
    energies "dW[ion]", else the name."""
    return name.split("[", 1)[0] if name.startswith(("K[", "dW[")) else name


def check_bounds(
    bounds: Mapping[str, tuple[float, float]] | None, names: tuple[str, ...] = PARAMETERS
) -> dict[str, tuple[float, float]]:
    """Validated bounds for the parameters ``names`` (defaults from :data:`BOUNDS`, :data:`ISOTHERM_BOUNDS`)."""
    out = {n: BOUNDS[n] if n in BOUNDS else ISOTHERM_BOUNDS[_family(n)] for n in names}
    for name, pair in (bounds or {}).items():
        if name not in names:
            raise FitError(f"unknown parameter {name!r} in bounds; parameters are {', '.join(names)}")
        lo, hi = pair
        out[name] = (float(lo), float(hi))
    for name, (lo, hi) in out.items():
        if not (np.isfinite(lo) and np.isfinite(hi)) or not lo < hi:
            raise FitError(f"bounds of {name} must be finite with lower < upper, got ({lo!r}, {hi!r})")
        if LOG_SCALE[_family(name)] and lo <= 0:
            raise FitError(f"bounds of {name} must be > 0 (log scale), got ({lo!r}, {hi!r})")
    return out


class Space:
    """Map between physical parameters ``names`` and the unit box [0, 1]^len(names) the optimisers search."""

    def __init__(self, bounds: Mapping[str, tuple[float, float]] | None = None, names: tuple[str, ...] = PARAMETERS):
        self.names = tuple(names)
        self.bounds = check_bounds(bounds, self.names)
        lo, hi = (np.array([self._t(n, self.bounds[n][k]) for n in self.names]) for k in (0, 1))
        self.lo, self.span = lo, hi - lo

    @staticmethod
    def _t(name: str, value: float) -> float:
        return float(np.log(value)) if LOG_SCALE[_family(name)] else float(value) / _LINEAR_SCALE.get(name, 1.0)

    @staticmethod
    def _inv(name: str, t: float) -> float:
        return float(np.exp(t)) if LOG_SCALE[_family(name)] else float(t) * _LINEAR_SCALE.get(name, 1.0)

    def theta(self, params: Mapping[str, float]) -> np.ndarray:
        """Transformed coordinates θ (ln of r_p, Δx_e, ε_p, Γ, K_i; X_d/100 mol m⁻³; n)."""
        return np.array([self._t(n, params[n]) for n in self.names])

    def params(self, theta: np.ndarray) -> dict[str, float]:
        """Physical parameters (SI) from θ."""
        return {n: self._inv(n, t) for n, t in zip(self.names, theta, strict=True)}

    def to_unit(self, params: Mapping[str, float]) -> np.ndarray:
        u = (self.theta(params) - self.lo) / self.span
        if np.any(u < 0) or np.any(u > 1):
            raise FitError(f"start {dict(params)} lies outside the bounds {self.bounds}")
        return u

    def to_unit_clipped(self, params: Mapping[str, float]) -> np.ndarray:
        return np.clip((self.theta(params) - self.lo) / self.span, 0.0, 1.0)

    def from_unit(self, u: np.ndarray) -> dict[str, float]:
        return self.params(self.lo + np.clip(u, 0.0, 1.0) * self.span)


def membrane(params: Mapping[str, float]) -> dspmde.Membrane:
    """A :class:`dspmde.Membrane` from a mapping with r_p (m), dx_e (m), eps_p, X_d (mol/m³)."""
    return dspmde.Membrane(
        r_p=float(params["r_p"]), dx_e=float(params["dx_e"]), eps_p=float(params["eps_p"]), X_d=float(params["X_d"])
    )


@dataclass(frozen=True)
class Model:
    """A DSPM-DE: ``membrane`` Z, charge ``isotherm`` (``None``: constant X_d), ``temperature_model``
    (a key of :data:`dspmde.TEMPERATURE_MODELS`) and ion-specific ``partition_energy`` ion → ΔW (k_B T;
    ions not named get ΔW = 0, the prior mean, see :meth:`prior_mean_ions`). :meth:`solve` is
    :func:`dspmde.solve` with them, so :class:`Objective`, :func:`predictions` and :func:`performance`
    take a Model as they take a Membrane; :meth:`to_dict` / :meth:`from_dict` round-trip it through JSON."""

    membrane: dspmde.Membrane
    isotherm: dspmde.ChargeIsotherm | None = None
    temperature_model: str = "none"
    partition_energy: Mapping[str, float] = field(default_factory=dict)

    def solve(self, feeds, fluxes, **options) -> dspmde.Result:
        """:func:`dspmde.solve` of ``feeds`` at ``fluxes`` (m/s) with this membrane, isotherm, temperature
        model and partition energies."""
        res = dspmde.solve(
            feeds,
            fluxes,
            membrane=self.membrane,
            isotherm=self.isotherm,
            temperature_model=self.temperature_model,
            partition_energy=dict(self.partition_energy) or None,
            **options,
        )
        res.info["prior_mean_ions"] = self.prior_mean_ions(res.species)
        return res

    def prior_mean_ions(self, species: Sequence[str]) -> tuple[str, ...]:
        """The ions of ``species`` without a fitted ΔW (they get 0, the prior mean): with a model that
        has partition energies, ions its calibration data did not hold."""
        if not self.partition_energy:
            return ()
        known = {ions.canonical(i) for i in self.partition_energy}
        return tuple(s for s in species if ions.canonical(s) not in known)

    def to_dict(self) -> dict:
        """A JSON-safe description (SI units, ΔW in k_B T); :meth:`from_dict` rebuilds the model."""
        iso = self.isotherm
        return {
            "kind": "dspmde",
            "membrane": asdict(self.membrane),
            "isotherm": None
            if iso is None
            else {"kind": iso.kind, "n": iso.n, "I_ref": iso.I_ref, "sites": iso.sites, "binding": dict(iso.binding)},
            "temperature_model": self.temperature_model,
            "partition_energy": {k: float(v) for k, v in self.partition_energy.items()},
        }

    @classmethod
    def from_dict(cls, spec: Mapping) -> Model:
        """The model :meth:`to_dict` described; a missing or bad entry raises :class:`FitError` naming it."""
        try:
            if spec.get("kind", "dspmde") != "dspmde":
                raise FitError(f"not a DSPM-DE model description: kind {spec.get('kind')!r}")
            iso = spec.get("isotherm")
            return cls(
                dspmde.Membrane(**spec["membrane"]),
                None if iso is None else dspmde.ChargeIsotherm(**iso),
                spec.get("temperature_model", "none"),
                dict(spec.get("partition_energy", {})),
            )
        except (KeyError, TypeError) as err:
            raise FitError(f"bad DSPM-DE model description: {err!r}") from None

    def charge(self, c_feed: np.ndarray, species: tuple[str, ...]) -> np.ndarray:
        """Membrane charge X (mol/m³) for feeds ``c_feed`` (…, d) in mol/m³ of ``species``, shape (…)."""
        return (self.isotherm or dspmde.ChargeIsotherm()).charge(self.membrane.X_d, c_feed, species)


@dataclass(frozen=True)
class Spec:
    """The DSPM-DE variant a fit adjusts: Z plus the parameters of the charge isotherm ``isotherm`` (a key
    of :data:`dspmde.ISOTHERMS`) — none for ``"constant"``; ``"n"`` for ``"freundlich"`` (X = X_d (I_f/I_ref)^n
    with I_ref = ``I_ref`` mol/m³, so X_d is the charge at I_f = I_ref); ``"sites"`` Γ (mol/m³) and
    ``"K[ion]"`` (m³/mol) for each of ``binding_ions`` for ``"langmuir"``. ``temperature_model`` is passed
    to :func:`dspmde.solve`. ``partition_ions`` adds a partition energy ``"dW[ion]"`` (k_B T) per ion, each
    with a Gaussian prior N(0, ``prior_width``²) that enters eq. 11 as the extra residual ΔW/width
    (:meth:`prior_residuals`). Bad names raise :class:`FitError` naming them."""

    isotherm: str = "constant"
    binding_ions: tuple[str, ...] = ()
    temperature_model: str = "none"
    I_ref: float = 10.0
    partition_ions: tuple[str, ...] = ()
    prior_width: float = 1.0

    def __post_init__(self) -> None:
        if self.isotherm not in dspmde.ISOTHERMS:
            raise FitError(f"unknown isotherm {self.isotherm!r}; choose one of {', '.join(dspmde.ISOTHERMS)}")
        if self.temperature_model not in dspmde.TEMPERATURE_MODELS:
            raise FitError(
                f"unknown temperature_model {self.temperature_model!r}; "
                f"choose one of {', '.join(dspmde.TEMPERATURE_MODELS)}"
            )
        given = (self.binding_ions,) if isinstance(self.binding_ions, str) else tuple(self.binding_ions)
        try:
            binding = tuple(dict.fromkeys(ions.canonical(i) for i in given))
        except ions.UnknownIonError as err:
            raise FitError(f"binding_ions: {err}") from None
        if self.isotherm == "langmuir" and not binding:
            raise FitError("isotherm 'langmuir' needs at least one binding ion, e.g. binding_ions=('Mg2+',)")
        if self.isotherm != "langmuir" and binding:
            raise FitError(f"binding_ions {binding} apply to isotherm 'langmuir' only, not {self.isotherm!r}")
        object.__setattr__(self, "binding_ions", binding)
        given = (self.partition_ions,) if isinstance(self.partition_ions, str) else tuple(self.partition_ions)
        try:
            object.__setattr__(self, "partition_ions", tuple(dict.fromkeys(ions.canonical(i) for i in given)))
        except ions.UnknownIonError as err:
            raise FitError(f"partition_ions: {err}") from None
        if not (isinstance(self.prior_width, (int, float)) and np.isfinite(self.prior_width) and self.prior_width > 0):
            raise FitError(f"prior_width must be a finite number > 0 (k_B T), got {self.prior_width!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """The fitted parameters: :data:`PARAMETERS`, then the isotherm's."""
        extra = {"freundlich": ("n",), "langmuir": ("sites", *(f"K[{i}]" for i in self.binding_ions))}
        return PARAMETERS + extra.get(self.isotherm, ()) + tuple(f"dW[{i}]" for i in self.partition_ions)

    def prior_residuals(self, params: Mapping[str, float]) -> np.ndarray:
        """ΔW_i / prior_width for every partition ion: the Gaussian prior's share of eq. 11 (empty without ΔW)."""
        return np.array([float(params[f"dW[{i}]"]) / self.prior_width for i in self.partition_ions])

    def model(self, params: Mapping[str, float]) -> Model:
        """The :class:`Model` of physical parameters ``params`` (SI; keys :attr:`names`)."""
        if self.isotherm == "freundlich":
            iso = dspmde.ChargeIsotherm.freundlich(float(params["n"]), self.I_ref)
        elif self.isotherm == "langmuir":
            iso = dspmde.ChargeIsotherm.langmuir(
                float(params["sites"]), {i: float(params[f"K[{i}]"]) for i in self.binding_ions}
            )
        else:
            iso = None
        return Model(
            membrane(params), iso, self.temperature_model, {i: float(params[f"dW[{i}]"]) for i in self.partition_ions}
        )
