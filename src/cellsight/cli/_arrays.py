"""Reading images for the command line: TIFF through cellsight.io, other formats via imageio."""

import sys
from pathlib import Path

import numpy as np

from cellsight.core.progress import ProgressEvent
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


class StderrProgress:
    """Print progress to stderr at most every ``every`` percent (and at the end)."""

    def __init__(self, label: str, every: float = 5.0):
        self.label, self.every, self.last = label, every, -1.0

    def __call__(self, event: ProgressEvent) -> None:
        pct = 100.0 * event.fraction
        values = " ".join(
            f"{k}={v:.4f}" for k, v in event.values.items() if isinstance(v, int | float)
        )
        if pct >= self.last + self.every or pct >= 100 or event.values.get("val_loss") is not None:
            self.last = max(self.last, pct)
            print(f"[{self.label}] {event.step}/{event.total} {values}".rstrip(), file=sys.stderr)
