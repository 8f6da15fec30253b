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
# OpenMP worker threads (torch's CPU kernels) spin-wait between parallel regions by
# default. Beside another busy thread - napari's event loop, a data loader - the spinning
# threads take the cores it needs: training in the viewer ran 4-6x slower on 2 cores.
# Passive waiting costs nothing measurable when torch runs alone. Read once when the
# OpenMP runtime starts (the first torch import), so it is set here, before that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

__all__ = ["__version__"]
