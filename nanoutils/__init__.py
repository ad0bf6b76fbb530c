"""nanoutils: DSPM-DE and physics-constrained neural ODEs for nanofiltration.

Public modules: :mod:`nanoutils.ions` (ion table, validated feeds),
:mod:`nanoutils.units` (conversions at the edges), :mod:`nanoutils.profiles`
(smoke/default/paper run profiles), :mod:`nanoutils.env` (device, seeds, versions).
"""
from importlib.metadata import PackageNotFoundError, version

from . import env, ions, profiles, units

try:
    __version__ = version("nanoutils")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["env", "ions", "profiles", "units", "__version__"]
