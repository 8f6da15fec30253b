"""Reading images for the command line: TIFF through cellsight.io, other formats via imageio."""

from pathlib import Path

import numpy as np

from cellsight.io.tiff import ImageData, ImageReadError, is_tiff, read_image


def read_any(path: str) -> ImageData:
    """Read a TIFF (keeping axes and scale) or a PNG / JPEG image (2D, RGB kept as is)."""
    p = Path(path)
    if is_tiff(p):
        return read_image(p)
    if not p.is_file():
        raise ImageReadError(f"Cannot read {p}: no such file.")
    from skimage.io import imread

    try:
        data = np.asarray(imread(p))
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"Cannot read {p} as an image: {exc}") from exc
    axes = "YXS" if data.ndim == 3 else "YX"
    return ImageData(data=data, axes=axes, scale=(1.0,) * data.ndim, metadata={"path": str(p)})

