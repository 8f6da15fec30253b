"""Reading images for the command line: TIFF with axes and scale, PNG / JPEG / BMP.

The reader lives in :mod:`cellsight.io.images` (the batch workers in ``core.blocks`` use
it too); this module keeps the commands' import in one place.
"""

from cellsight.io.images import read_any

__all__ = ["read_any"]
