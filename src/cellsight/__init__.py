"""cellsight: denoise, segment and track cells in napari.

Importing the package is cheap: it loads neither torch nor any Qt binding.
Heavy modules (``cellsight.core``, ``cellsight.gui``) are imported on use.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
