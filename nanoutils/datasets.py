"""Alias of :mod:`nanoutils.pretraining_set` (the simulated pre-training set), kept for one release under its old
name; see CHANGELOG.md."""

import sys

from . import pretraining_set

sys.modules[__name__] = pretraining_set
