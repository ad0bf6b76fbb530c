"""nanoutils: DSPM-DE and physics-constrained neural ODEs for nanofiltration.

Public modules: :mod:`nanoutils.ions` (ion table, validated feeds),
:mod:`nanoutils.units` (conversions at the edges), :mod:`nanoutils.dspmde` (the
batched DSPM-DE solver and the paper's reference scheme), :mod:`nanoutils.activity`
(ideal, Davies and Pitzer activity coefficients), :mod:`nanoutils.data`
(measured rejection data: schema, loader, splits), :mod:`nanoutils.metrics` (the
Table 1 test error), :mod:`nanoutils.profiles` (smoke/default/paper run profiles),
:mod:`nanoutils.env` (device, seeds, versions), :mod:`nanoutils.models` (the
physics-constrained neural ODE), :mod:`nanoutils.training` (the shared training
loop), :mod:`nanoutils.sampling` (Sobol feed compositions for pre-training),
:mod:`nanoutils.datasets` (the cached, DSPM-DE-labelled pre-training set),
:mod:`nanoutils.fitting` (eq. 11 fits of Z, Table 2), :mod:`nanoutils.virtual_lab` (the VIRTUAL
NF270 data set), :mod:`nanoutils.finetuning` (eq. 5 fine-tuning on measurements, ablations),
:mod:`nanoutils.friction` (the solution-friction baseline), :mod:`nanoutils.comparison` (Table 1),
:mod:`nanoutils.transfer` (the real-data leave-one-feed-out benchmark), :mod:`nanoutils.dspmde_plus`
(DSPM-DE with ion binding and per-ion partition energies, and the benchmark's mechanistic calibrations),
:mod:`nanoutils.plotting` and :mod:`nanoutils.report` (figures, result tables, README blocks), and
:func:`predict` (one prediction API for trained models and DSPM-DE).

Submodules are imported when first used (``nanoutils.fitting`` …), so ``import nanoutils`` is quick and
``python -m nanoutils.virtual_lab`` runs its module once.
"""
import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("nanoutils")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

_MODULES = ("activity", "comparison", "data", "datasets", "dspmde", "dspmde_plus", "env", "finetuning", "fitting",
            "friction", "ions", "metrics", "models", "plotting", "prediction", "profiles", "report", "sampling",
            "training", "transfer", "units", "virtual_lab")
__all__ = [*_MODULES, "predict", "__version__"]


def __getattr__(name: str) -> Any:
    """Import a submodule (or :func:`predict`) on first access."""
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "predict":
        return importlib.import_module(".prediction", __name__).predict
    raise AttributeError(f"module 'nanoutils' has no attribute {name!r}")
