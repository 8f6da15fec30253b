"""cellsight: denoise, segment and track cells in napari.

Importing the package is cheap: it loads neither torch nor any Qt binding.
Heavy modules (``cellsight.core``, ``cellsight.gui``) are imported on use.
"""

import os

# oneDNN (torch's CPU convolutions) keeps compiled kernels for up to 1024 input shapes by
# default, each with its own buffers; images and blocks of many sizes (a batch of files,
# the edge blocks of a big image) then grow memory by GBs. 64 shapes cover the few a
# network sees at once; set before torch starts (a value the user set wins).
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")

__version__ = "0.1.0"

__all__ = ["__version__"]
