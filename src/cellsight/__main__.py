"""Run the ``cellsight`` command as ``python -m cellsight``."""

import sys

from cellsight.cli import main

sys.exit(main())
