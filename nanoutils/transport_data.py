"""Alias of :mod:`nanoutils.training_data` (the training container TransportData), kept for one release under its old
name; see CHANGELOG.md."""

import sys

from . import training_data

sys.modules[__name__] = training_data
