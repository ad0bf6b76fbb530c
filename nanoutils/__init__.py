"""nanoutils: DSPM-DE and physics-constrained neural ODEs for nanofiltration.

Public modules: :mod:`nanoutils.ions` (ion table, validated feeds),
:mod:`nanoutils.units` (conversions at the edges), :mod:`nanoutils.dspmde` (the
batched DSPM-DE solver and the paper's reference scheme), :mod:`nanoutils.activity`
(ideal, Davies and Pitzer activity coefficients), :mod:`nanoutils.measurements`
(measured rejection data: schema, loader, splits), :mod:`nanoutils.metrics` (the
Table 1 test error), :mod:`nanoutils.profiles` (smoke/default/paper run profiles),
:mod:`nanoutils.env` (device, seeds, versions), :mod:`nanoutils.models` (the
physics-constrained neural ODE), :mod:`nanoutils.training` (the shared training
loop), :mod:`nanoutils.sampling` (Sobol feed compositions for pre-training),
:mod:`nanoutils.pretraining_set` (the cached, DSPM-DE-labelled pre-training set),
:mod:`nanoutils.training_data` (the container every learned model trains on), :mod:`nanoutils.constants`
(physical constants),
:mod:`nanoutils.fitting` (eq. 11 fits of Z, Table 2), :mod:`nanoutils.virtual_lab` (the VIRTUAL
NF270 data set), :mod:`nanoutils.finetuning` (eq. 5 fine-tuning on measurements, ablations),
:mod:`nanoutils.friction` (the solution-friction baseline), :mod:`nanoutils.sdem` (the
solution–diffusion–electromigration model), :mod:`nanoutils.comparison` (Table 1),
:mod:`nanoutils.transfer` (the real-data leave-one-feed-out benchmark), :mod:`nanoutils.dspmde_plus`
(DSPM-DE with ion binding and per-ion partition energies, and the benchmark's mechanistic calibrations),
:mod:`nanoutils.plotting` and :mod:`nanoutils.report` (figures, result tables, README blocks),
:mod:`nanoutils.calibration` (calibrate a model by name on measurements) and :mod:`nanoutils.bundle` (the
model bundle it writes), :func:`predict` (one prediction API for trained models, DSPM-DE and bundles) and
:func:`load` (a model bundle).

Submodules are imported when first used (``nanoutils.fitting`` …), so ``import nanoutils`` is quick and
``python -m nanoutils.virtual_lab`` runs its module once. ``nanoutils.data``, ``nanoutils.datasets`` and
``nanoutils.transport_data`` are aliases of ``measurements``, ``pretraining_set`` and ``training_data`` for one
release.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("nanoutils")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

_MODULES = (
    "activity",
    "bundle",
    "calibration",
    "comparison",
    "constants",
    "dspmde",
    "dspmde_plus",
    "env",
    "finetuning",
    "fitting",
    "friction",
    "ions",
    "measurements",
    "metrics",
    "models",
    "plotting",
    "prediction",
    "pretraining_set",
    "profiles",
    "report",
    "sampling",
    "sdem",
    "training",
    "training_data",
    "transfer",
    "units",
    "virtual_lab",
)
#: Old module names, aliases of the new ones for one release (CHANGELOG.md).
_ALIASES = ("data", "datasets", "transport_data")
__all__ = [*_MODULES, "load", "predict", "__version__"]


def __getattr__(name: str) -> Any:
    """Import a submodule (or :func:`predict`, :func:`load`) on first access."""
    if name in _MODULES or name in _ALIASES:
        return importlib.import_module(f".{name}", __name__)
    if name == "predict":
        return importlib.import_module(".prediction", __name__).predict
    if name == "load":
        return importlib.import_module(".bundle", __name__).load
    raise AttributeError(f"module 'nanoutils' has no attribute {name!r}")
