"""Statistics measured once over a whole (big) image, so that every block agrees."""

import math

import numpy as np

from cellsight.core.blocks.arrays import ArrayRef


def sample_pixels(ref: ArrayRef, max_pixels: int = 4_000_000) -> np.ndarray:
    """A strided sample of at most about ``max_pixels`` values spread over the whole array.

    Reads the array chunk by chunk (memory stays at one chunk plus the sample).

    Examples
    --------
    >>> sample_pixels(ArrayRef(array=np.arange(100).reshape(10, 10)), 25).shape
    (5, 5)
    """
    shape = ref.shape
    stride = max(1, math.ceil((math.prod(shape) / max_pixels) ** (1 / len(shape))))
    return ref.read(tuple(slice(None, None, stride) for _ in shape))


def global_percentiles(ref: ArrayRef, low: float, high: float) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of the whole array (from a strided sample).

    Examples
    --------
    >>> global_percentiles(ArrayRef(array=np.arange(101.0)), 1, 99)
    (1.0, 99.0)
    """
    values = sample_pixels(ref).astype(np.float64, copy=False)
    if not np.all(np.isfinite(values)):
        raise ValueError("The image contains NaN or infinite values.")
    lo, hi = np.percentile(values, [low, high])
    return float(lo), float(hi)


def central_crop(ref: ArrayRef, spatial: int, size: int = 1024) -> np.ndarray:
    """The central ``size``-pixel Y/X crop of the first frame (all of Z for 3D)."""
    shape = ref.shape
    lead = tuple(0 for _ in shape[: len(shape) - spatial])
    slices = []
    for axis, n in enumerate(shape[len(lead):]):
        if axis < spatial - 2:  # Z: keep all
            slices.append(slice(None))
            continue
        start = max(0, (n - size) // 2)
        slices.append(slice(start, min(n, start + size)))
    return ref.read((*lead, *slices))
