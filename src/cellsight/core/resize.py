"""Resizing images and label maps in Y/X (a model's ``scale``), channel axis first."""

from collections.abc import Sequence

import numpy as np
from skimage.transform import resize


def scaled_shape(shape: Sequence[int], factor: float) -> tuple[int, ...]:
    """``shape`` with its last two axes (Y, X) multiplied by ``factor`` (at least 1)."""
    shape = tuple(int(s) for s in shape)
    return shape[:-2] + tuple(max(1, int(round(s * factor))) for s in shape[-2:])


def resize_channels(image: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize every channel of ``(C, *spatial)`` to ``shape`` (linear; smoothed when shrinking)."""
    shape = tuple(shape)
    if tuple(image.shape[1:]) == shape:
        return np.asarray(image, np.float32)
    shrink = any(n < o for n, o in zip(shape, image.shape[1:], strict=True))
    return np.stack(
        [
            resize(ch, shape, order=1, mode="reflect", anti_aliasing=shrink, preserve_range=True)
            for ch in image
        ]
    ).astype(np.float32)


def resize_labels(labels: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Resize a label map to ``shape`` with nearest neighbours (ids stay ids)."""
    shape = tuple(shape)
    if tuple(labels.shape) == shape:
        return labels
    out = resize(labels, shape, order=0, mode="edge", anti_aliasing=False, preserve_range=True)
    return out.astype(labels.dtype)
