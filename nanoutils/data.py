"""Alias of :mod:`nanoutils.measurements` (the measured-data layer (schema, loader, splits)), kept for one release
under its old name; see CHANGELOG.md."""

import sys

from . import measurements

sys.modules[__name__] = measurements
