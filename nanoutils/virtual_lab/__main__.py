"""``python -m nanoutils.virtual_lab``: regenerate (or ``--check``) the VIRTUAL NF270 files."""

import sys

from . import main

sys.exit(main())
