"""Calibrate a model on measured rejections, by name: the registry :data:`CALIBRATORS` and :func:`calibrate`.

A :class:`Calibrator` fits one model kind to a :class:`nanoutils.measurements.Measurements` set for one seed and
returns its members (what :func:`nanoutils.predict` averages):

* **mechanistic** (DSPM-DE variants, SF): one eq. 11 fit (budget of the profile: ``baseline_fit``
  / ``sf_fit`` in :data:`nanoutils.profiles.SETTINGS`), then :data:`POSTERIOR_DRAWS` parameter sets drawn from its
  Laplace posterior
  N(θ̂, Σ) in the fit's transformed space θ (Σ: the Gauss–Newton covariance, scaled by max(1, reduced χ²)),
  clipped to the fit's bounds; predictions are the fitted model's, ``R_std_param`` the spread of fit and
  draws (``R_std`` adds the calibration residual scatter, :func:`nanoutils.bundle.residual_sd`);
  a parameter that ended at a bound is held there (its σ means nothing) and the fit's info says so.
  Members are saved as JSON (``to_dict`` / ``from_dict``).
* **membrane family** (``neural_ode_family``, ``neural_ode_family_code``): a neural ODE pre-trained on a family of
  membranes with the membrane code as an extra input; the code is inferred from the data, then (not in the
  ``_code`` ablation) the weights fine-tuned (:mod:`nanoutils.membrane_calibration`).
* **learned** (neural ODE, PINN, ResNet, U-Net): the profile's pre-trained weights (chapters 04 and 06
  checkpoints under ``runs/<profile>/checkpoints``; pre-trained first, with a progress bar, when absent), then
  eq. 5 fine-tuning on all the measurements (``finetuning.finetune``, the profile's schedule, no validation
  feeds, seeded); one member per seed, saved as a :mod:`nanoutils.training` checkpoint.

Registering a model is one entry of :data:`CALIBRATORS`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import dspmde_plus, fitting, friction, ions, sdem
from .measurements import Measurements
from .profiles import Profile, get

#: Laplace-posterior members drawn per mechanistic fit.
POSTERIOR_DRAWS = 8
#: The model ``nanoutils calibrate`` fits when ``--model`` is not given.
DEFAULT_MODEL = "sdem"


class CalibrationError(ValueError):
    """Bad input to a calibration (unknown model name, data the model cannot take); names the culprit."""


@dataclass(frozen=True)
class MemberFormat:
    """How a member is stored in a bundle: file ``suffix``, ``save(member, path)``, ``load(path) -> member``
    (a missing, corrupt or foreign file raises a ``ValueError`` naming the path)."""

    suffix: str
    save: Callable[[Any, Path], Any]
    load: Callable[[Path], Any]


def json_member(cls: Any) -> MemberFormat:
    """Members of a class ``cls`` with ``to_dict`` and ``from_dict``, stored as JSON."""

    def save(model: Any, path: Path) -> None:
        path.write_text(json.dumps(model.to_dict(), indent=1))

    def load(path: Path) -> Any:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CalibrationError(f"{path}: not valid JSON ({err})") from None
        except (ValueError, TypeError, AttributeError) as err:
            raise CalibrationError(f"{path}: {err}") from None

    return MemberFormat(".json", save, load)


def _save_torch(model: Any, path: Path) -> None:
    from .training import save_model

    save_model(model, path)


def _load_torch(path: Path) -> Any:
    from .training import load_model

    return load_model(path)


TORCH_MEMBER = MemberFormat(".pt", _save_torch, _load_torch)


@dataclass(frozen=True)
class Fitted:
    """What one fit gives: its ``members`` (mechanistic: the fitted model first), JSON-serialisable ``info`` (fitted
    values, notes; ``chi2`` ranks the seeds of a mechanistic model) and, for learned models, the ``pretraining``
    domain (ions, ``c_mM`` range, ``flux_LMH`` range, ``T_C``) of their weights."""

    members: list
    info: dict[str, Any] = field(default_factory=dict)
    pretraining: dict[str, Any] | None = None


@dataclass(frozen=True)
class Calibrator:
    """A calibratable model: registry ``name``, ``kind`` ("mechanistic" or "learned"), a one-line
    ``description``, ``fit(meas, profile, seed) -> Fitted``, the ``member`` file format and the number of
    seeds a calibration uses by default. Mechanistic fits return the fitted model first, then posterior draws."""

    name: str
    kind: str
    description: str
    fit: Callable[[Measurements, Profile, int], Fitted]
    member: MemberFormat
    default_seeds: int = 1


def _fit_info(res: Any) -> dict[str, Any]:
    """The report's summary of a mechanistic fit (a DSPM-DE ``FitResult`` or an ``SDEMFit``): its parameter table,
    χ², size and time, and which parameters ended at a bound (held there in the posterior draws)."""
    at = list(res.at_bounds)
    return {
        "parameters": res.table().reset_index().to_dict("records"),
        "at_bounds": at,
        "chi2": res.chi2,
        "reduced_chi2": res.reduced_chi2,
        "n_points": res.n_points,
        "wall_s": res.wall_s,
        "note": f"{', '.join(at)} at a bound: held there in the posterior draws (σ not meaningful)" if at else "",
    }


def _fit_members(res: fitting.FitResult, seed: int) -> Fitted:
    """A DSPM-DE fit (any variant) as bundle members: the fitted model and its Laplace draws (parameters at a
    bound held there), with the fit table as the report's parameters."""
    members = [res.model] + fitting.fit_draws(res, POSTERIOR_DRAWS, seed, hold_at_bounds=True)
    return Fitted(members, _fit_info(res))


def _dspmde_fit(
    meas: Measurements, profile: Profile, seed: int, isotherm: str = "constant", binding: bool = False
) -> Fitted:
    binding_ions: tuple[str, ...] = ()
    if binding:
        species = meas.arrays().species
        binding_ions = tuple(s for s in species if ions.get(s).z >= 2)
        if not binding_ions:
            raise CalibrationError(
                f"a Langmuir charge isotherm binds divalent cations, but the data hold none "
                f"(ions: {', '.join(species)}); choose another model"
            )
    return _fit_members(
        fitting.fit(
            meas,
            start=fitting.PAPER_TABLE2,
            seed=seed,
            isotherm=isotherm,
            binding_ions=binding_ions,
            **profile.settings.baseline_fit,
        ),
        seed,
    )


def _dspmde_plus_fit(meas: Measurements, profile: Profile, seed: int) -> Fitted:
    return _fit_members(dspmde_plus.fit(meas, variant="dspmde_plus", seed=seed, profile=profile), seed)


def _sdem_fit(meas: Measurements, profile: Profile, seed: int) -> Fitted:
    """SDEM with one set of permeances for all calibration feeds (the transfer form); an ion absent from the
    calibration data takes the diffusivity fallback (flagged by the bundle's domain as not calibrated)."""
    res = sdem.fit(meas, fallback="diffusivity", seed=seed, **profile.settings.sdem_fit)
    base, n = res.model, len(res.names)
    ion_names = [name[2:-1] for name in res.names]  # "P[ion]"
    lo, hi = np.log(sdem.BOUNDS["P"])

    def to_model(theta: np.ndarray) -> sdem.SDEMModel:
        return sdem.SDEMModel(
            {ion: float(np.exp(t)) for ion, t in zip(ion_names, theta, strict=True)},
            exponent=base.exponent,
            c_ref=base.c_ref,
            fallback=base.fallback,
        )

    fixed = [res.names.index(name) for name in res.at_bounds]
    members = [base] + fitting.laplace_draws(
        res.theta, res.covariance, to_model, seed, np.full(n, lo), np.full(n, hi), fixed, n=POSTERIOR_DRAWS
    )
    return Fitted(members, _fit_info(res))


def _sf_fit(meas: Measurements, profile: Profile, seed: int) -> Fitted:
    res = friction.fit(meas, seed=seed, **profile.settings.sf_fit)
    members = [res.model] + fitting.laplace_draws(
        res.space.theta(res.model), res.covariance, res.space.model, seed, res.space.lo, res.space.hi, n=POSTERIOR_DRAWS
    )
    info = {
        "parameters": res.table().reset_index().to_dict("records"),
        "chi2": res.chi2,
        "n_points": res.n_points,
        "wall_s": res.wall_s,
    }
    return Fitted(members, info)


def _pretrained(name: str, profile: Profile):
    """The profile's pre-trained ``name`` (chapter 04/06 checkpoint, loaded or trained) and its simulated split."""
    from . import comparison, pretraining_set, training

    simulated = pretraining_set.split(pretraining_set.pretraining_set(profile=profile))
    run_dir = comparison.checkpoint_dir(name, profile)
    if not (run_dir / "last.pt").exists():
        print(f"no pre-trained {name} in {run_dir}: pre-training it ({profile.name} profile)", file=sys.stderr)
    try:
        result = comparison.pretrain(name, simulated, profile, run_dir=run_dir, resume=True, progress=True)
    except training.CheckpointMismatchError as err:
        run_dir = profile.run_dir / "checkpoints" / "calibrate" / name
        print(f"{err}\n→ pre-training {name} in {run_dir}", file=sys.stderr)
        result = comparison.pretrain(name, simulated, profile, run_dir=run_dir, resume=True, progress=True)
    return result.model.cpu(), simulated, run_dir


def _learned_fit(name: str) -> Callable[[Measurements, Profile, int], Fitted]:
    def fit(meas: Measurements, profile: Profile, seed: int) -> Fitted:
        from . import finetuning, models, pretraining_set

        base, simulated, run_dir = _pretrained(name, profile)
        cfg = finetuning.finetune_config(profile, seed=seed)
        res = finetuning.finetune(
            models.clone(base), meas, None, profile=profile, simulated=simulated["train"], config=cfg, progress=True
        )
        info = {
            "pretrained": str(run_dir),
            "epochs": len(res.history),
            "final_train_loss": res.history[-1]["train_loss"],
        }
        return Fitted([res.model.cpu()], info, _domain(base, pretraining_set.PretrainingSpec.for_profile(profile)))

    return fit


def _domain(model: Any, spec: Any) -> dict[str, Any]:
    """The pre-training domain of a learned model's weights: its ions, the sampled concentration and flux ranges
    and the temperature of the pre-training set ``spec``."""
    from . import units

    return {
        "ions": list(model.config.species),
        "c_mM": [spec.c_min, spec.c_max],
        "flux_LMH": [0.0, float(units.m_s_to_lmh(spec.j_max))],
        "T_C": [spec.temperature - 273.15] * 2,
    }


class FamilyNetwork(NamedTuple):
    """A pre-trained membrane-aware network: its training ``result`` (model on the CPU), the family set's split
    (``{"train", "val", "test"}``, whole membranes apart), its specification and the checkpoint directory."""

    result: Any
    simulated: dict[str, Any]
    spec: Any
    run_dir: Path


def pretrained_family(name: str, profile: str | Profile, device: str = "auto") -> FamilyNetwork:
    """The profile's ``name`` pre-trained on the membrane-family set (knob ``family_set``, Pitzer–Kim labels; loop
    ``family_pretraining`` on ``device``; checkpoint ``runs/<profile>/checkpoints/family/<name>``, trained when
    absent or stale, else loaded)."""
    from . import comparison, membrane_family, pretraining_set

    P = get(profile)
    spec = pretraining_set.PretrainingSpec.for_profile(P, family=True, activity="pitzer")
    simulated = pretraining_set.split(pretraining_set.pretraining_set(spec, profile=P))
    run_dir = P.run_dir / "checkpoints" / "family" / name
    result = comparison.pretrain(
        name,
        simulated,
        P,
        run_dir=run_dir,
        resume="if_compatible",
        device=device,
        progress=True,
        stage="family_pretraining",
        membrane_code=membrane_family.N_CODE,
    )
    result.model.cpu()
    return FamilyNetwork(result, simulated, spec, run_dir)


def _family_fit(weights: bool) -> Callable[[Measurements, Profile, int], Fitted]:
    def fit(meas: Measurements, profile: Profile, seed: int) -> Fitted:
        from . import membrane_calibration, models

        net = pretrained_family("neural_ode", profile)
        model, stages = membrane_calibration.calibrate(
            models.clone(net.result.model),
            meas,
            profile=profile,
            seed=seed,
            simulated=net.simulated["train"],
            weights=weights,
            activity=net.spec.activity,
            progress=True,
        )
        info = {"pretrained": str(net.run_dir), "stages": [s.to_dict() for s in stages]}
        return Fitted([model.cpu()], info, _domain(net.result.model, net.spec))

    return fit


def _hybrid_fit(meas: Measurements, profile: Profile, seed: int) -> Fitted:
    """The hybrid model (:func:`nanoutils.hybrid.fit`): no pre-trained weights, so no pre-training domain (an ion
    outside the calibration data is flagged by the bundle's domain and gets no ΔW correction)."""
    from . import hybrid, pretraining_set

    n_sim = profile.settings.hybrid["simulated_feeds"]
    simulated = pretraining_set.split(pretraining_set.pretraining_set(profile=profile))["train"] if n_sim else None
    res, base = hybrid.fit(meas, profile=profile, seed=seed, simulated=simulated, progress=True)
    info = {
        "base": "dspmde_plus",
        "base_chi2": base.chi2,
        "base_parameters": base.table().reset_index().to_dict("records"),
        "epochs": len(res.history),
        "final_train_loss": res.history[-1]["train_loss"],
    }
    return Fitted([res.model.cpu()], info)


def _learned(name: str, label: str) -> Calibrator:
    return Calibrator(
        name,
        "learned",
        f"{label}: the profile's pre-trained weights fine-tuned by eq. 5 (one member per seed)",
        _learned_fit(name),
        TORCH_MEMBER,
        default_seeds=3,
    )


#: Calibratable models by name.
CALIBRATORS: dict[str, Calibrator] = {
    c.name: c
    for c in (
        Calibrator(
            "dspmde",
            "mechanistic",
            "DSPM-DE with fitted Z = (r_p, Δx_e, ε_p, X_d), constant charge",
            _dspmde_fit,
            json_member(fitting.Model),
        ),
        Calibrator(
            "dspmde_freundlich",
            "mechanistic",
            "DSPM-DE with a Freundlich charge X_d (I/10 mM)^n (Z and n fitted)",
            lambda m, p, s: _dspmde_fit(m, p, s, "freundlich"),
            json_member(fitting.Model),
        ),
        Calibrator(
            "dspmde_langmuir",
            "mechanistic",
            "DSPM-DE with Langmuir binding of the divalent cations in the data (Z, Γ, K_i fitted)",
            lambda m, p, s: _dspmde_fit(m, p, s, "langmuir", binding=True),
            json_member(fitting.Model),
        ),
        Calibrator(
            "dspmde_plus",
            "mechanistic",
            "DSPM-DE with Langmuir binding of the divalent cations and a "
            "partition energy ΔW_i per ion (N(0, 1 kT) prior; Z, Γ, K_i, ΔW_i fitted)",
            _dspmde_plus_fit,
            json_member(fitting.Model),
        ),
        Calibrator(
            "sdem",
            "mechanistic",
            "solution–diffusion–electromigration model: one permeance per ion shared by "
            "all feeds (ions not calibrated: scaled from diffusivity, flagged)",
            _sdem_fit,
            json_member(sdem.SDEMModel),
        ),
        Calibrator(
            "sf",
            "mechanistic",
            "solution-friction model, one friction factor per ion (predicts only the ions of its data)",
            _sf_fit,
            json_member(friction.SFModel),
        ),
        Calibrator(
            "hybrid_dspmde",
            "learned",
            "hybrid: a network maps the feed to bounded corrections of X_d and ΔW_i around a dspmde_plus fit, "
            "DSPM-DE computes the permeate (one member per seed)",
            _hybrid_fit,
            TORCH_MEMBER,
            default_seeds=3,
        ),
        _learned("neural_ode", "physics-constrained neural ODE"),
        Calibrator(
            "neural_ode_family",
            "learned",
            "neural ODE pre-trained on a membrane family (Pitzer–Kim labels): the membrane code inferred from the "
            "data (from the DSPM-DE fit), then the weights fine-tuned by eq. 5 around it (one member per seed)",
            _family_fit(weights=True),
            TORCH_MEMBER,
            default_seeds=3,
        ),
        Calibrator(
            "neural_ode_family_code",
            "learned",
            "neural ODE pre-trained on a membrane family: only the membrane code inferred from the data "
            "(weights as pre-trained; the ablation of neural_ode_family)",
            _family_fit(weights=False),
            TORCH_MEMBER,
            default_seeds=1,
        ),
        _learned("pinn", "PINN (DSPM-DE residual, Table 2 Z)"),
        _learned("resnet", "ResNet"),
        _learned("unet", "U-Net"),
    )
}


def calibrator(name: str) -> Calibrator:
    """The registered calibrator ``name``; an unknown name raises :class:`CalibrationError` listing the known ones."""
    try:
        return CALIBRATORS[name]
    except KeyError:
        raise CalibrationError(f"unknown model {name!r}; choose one of {', '.join(CALIBRATORS)}") from None


def calibrate(
    name: str,
    meas: Measurements,
    *,
    profile: str | Profile = "default",
    seeds: int | Sequence[int] | None = None,
    sources: Sequence[str | Path] = (),
    command: str = "",
):
    """Calibrate model ``name`` (:data:`CALIBRATORS`) on ``meas``: one fit per seed (``seeds``: a count, a list of
    seeds, or None for the model's default), all members in one :class:`nanoutils.bundle.Bundle` with the
    calibration domain, provenance (``sources``: the data files, hashed; ``command``), the in-sample
    scored points of its report and the residual scatter of those points (:func:`nanoutils.bundle.residual_sd`,
    with the fitted parameters counted for a mechanistic model) that ``R_std`` adds to the members' spread."""
    from . import bundle

    cal = calibrator(name)
    P = get(profile)
    if not isinstance(meas, Measurements) or len(meas) == 0:
        raise CalibrationError("no measurements to calibrate on")
    seed_list = (
        list(range(cal.default_seeds if seeds is None else seeds))
        if seeds is None or isinstance(seeds, int)
        else [int(s) for s in seeds]
    )
    if not seed_list:
        raise CalibrationError(f"need at least one seed, got {seeds!r}")
    fits = [cal.fit(meas, P, s) for s in seed_list]
    point = cal.kind == "mechanistic"
    if point:  # the best fit's parameters give the predictions
        fits.sort(key=lambda f: f.info.get("chi2", np.inf))
    members = [m for f in fits for m in f.members]
    scored = bundle.score_points(members, meas, point)
    scatter = bundle.residual_sd(scored, len(fits[0].info.get("parameters", [])) if point else 0)
    return bundle.Bundle(
        name=name,
        kind=cal.kind,
        members=members,
        domain=bundle.domain_of(meas, fits[0].pretraining),
        provenance=bundle.provenance(sources, P.name, command, seed_list),
        info=[f.info for f in fits],
        scored=scored.assign(R_std=np.hypot(scored["R_std_param"], scatter)),
        point_estimate=point,
        residual_sd=scatter,
    )


def fitter(name: str, *, profile: str | Profile = "default") -> Callable[[Measurements, int], Any]:
    """``(train_meas, seed) -> Bundle``: :func:`calibrate` of ``name`` with that one seed, for protocols that refit a
    model per fold (score the result on held-out feeds with :meth:`nanoutils.bundle.Bundle.score`)."""
    calibrator(name)
    return lambda meas, seed: calibrate(name, meas, profile=profile, seeds=[seed])
