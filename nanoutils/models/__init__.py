"""Learned transport models: feed (mol/m³) and flux (m/s) → permeate (mol/m³).

Every model here takes ``(feed, species_mask, flux, flux_mask)`` and returns the
permeate (B, K, d), has a ``Config`` dataclass with ``for_profile(profile, **kw)``,
keeps its configuration in ``.config``, and is registered by name in
:data:`MODELS`; :func:`build` and :func:`from_spec` choose by that name. Adding a
model is one import and one entry in :data:`MODELS`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from torch import nn

from ..profiles import Profile
from ._encoding import FLUX_SCALE_M_S as FLUX_SCALE_M_S
from ._encoding import ModelInputError as ModelInputError
from ._encoding import check_inputs as check_inputs
from ._encoding import equivalent_scale as equivalent_scale
from ._encoding import flux_encoding as flux_encoding
from ._encoding import log_feed_feature as log_feed_feature
from ._encoding import scale_feature as scale_feature
from ._hybrid import HybridConfig as HybridConfig
from ._hybrid import HybridDSPMDE as HybridDSPMDE
from ._neural_ode import ERROR_NORMS as ERROR_NORMS
from ._neural_ode import ODE_METHODS as ODE_METHODS
from ._neural_ode import STATES as STATES
from ._neural_ode import NeuralODE as NeuralODE
from ._neural_ode import NeuralODEConfig as NeuralODEConfig
from ._pinn import PINN as PINN
from ._pinn import PINNConfig as PINNConfig
from ._pinn import rejection_residual as rejection_residual
from ._projection import charge_imbalance as charge_imbalance
from ._projection import project_electroneutral as project_electroneutral
from ._resnet import ResNet as ResNet
from ._resnet import ResNetConfig as ResNetConfig
from ._unet import UNet as UNet
from ._unet import UNetConfig as UNetConfig

#: Any registered model: its ``config`` holds the ion order (``species``) and the sizes.
Model = NeuralODE | ResNet | UNet | HybridDSPMDE

#: Model classes by name.
MODELS: dict[str, type[Model]] = {
    "neural_ode": NeuralODE,
    "resnet": ResNet,
    "unet": UNet,
    "pinn": PINN,
    "hybrid_dspmde": HybridDSPMDE,
}


def _model_class(name: str) -> type[Model]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


def build(name: str, profile: str | Profile = "default", **overrides: Any) -> Model:
    """A new model ``name`` sized for ``profile``, with config ``overrides`` (e.g. ``adjoint=True``)."""
    cls = _model_class(name)
    return cls(cls.Config.for_profile(profile, **overrides))  # type: ignore[arg-type]  # each class takes its Config


def spec(model: nn.Module) -> dict[str, Any]:
    """``{"name", "config"}`` from which :func:`from_spec` rebuilds the (untrained) model."""
    names = [n for n, cls in MODELS.items() if type(model) is cls]
    if not names or not isinstance(model, Model):
        raise ValueError(f"model type {type(model).__name__} is not registered in nanoutils.models.MODELS")
    return {"name": names[0], "config": asdict(model.config)}


def from_spec(model_spec: dict[str, Any]) -> Model:
    """Rebuild a model from :func:`spec` output (weights are loaded separately)."""
    cls = _model_class(model_spec["name"])
    return cls(cls.Config(**model_spec["config"]))  # type: ignore[arg-type]  # each class takes its Config


def clone(model: nn.Module, **overrides: Any) -> Model:
    """A copy of a registered ``model`` with its weights, dtype and device, and config ``overrides``
    (e.g. a PINN's ``membrane``); ``model`` itself is left untouched."""
    s = spec(model)
    copy = from_spec({"name": s["name"], "config": {**s["config"], **overrides}})
    p = next(model.parameters())
    copy.to(dtype=p.dtype, device=p.device)
    copy.load_state_dict(model.state_dict())
    return copy


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "FLUX_SCALE_M_S",
    "HybridConfig",
    "HybridDSPMDE",
    "MODELS",
    "ModelInputError",
    "NeuralODE",
    "NeuralODEConfig",
    "ODE_METHODS",
    "build",
    "charge_imbalance",
    "clone",
    "check_inputs",
    "equivalent_scale",
    "flux_encoding",
    "from_spec",
    "log_feed_feature",
    "n_parameters",
    "project_electroneutral",
    "scale_feature",
    "spec",
    "STATES",
    "PINN",
    "PINNConfig",
    "ResNet",
    "ResNetConfig",
    "UNet",
    "UNetConfig",
    "rejection_residual",
]
